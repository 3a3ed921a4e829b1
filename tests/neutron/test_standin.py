"""The Neutron stand-in talks to an agent over oslo.messaging as a server does.

These run without root and without charon. The agent side here is what the
stock IPsecDriver uses: IPsecVpnDriverApi('ipsec_driver') for calls, and a
consumer on 'ipsec_agent.<host>' made with neutron_lib.rpc.Connection.
Run with ``python -m pytest -p neutron`` (neutron has to be imported before
oslo.service).
"""
import neutron  # noqa: F401  -- first: picks oslo.service's threading backend

import contextlib
import gc
import logging
import queue
import threading
import time
import types
from unittest import mock

import oslo_messaging
import pytest
from neutron_lib import context as n_context
from neutron_lib import fixture as lib_fixture
from neutron_lib import rpc as n_rpc
from oslo_config import cfg

from neutron_vpnaas.services.vpn.common import topics
from neutron_vpnaas.services.vpn.device_drivers import ipsec as agent_ipsec

import standin

SITE_A = ('host-a', '203.0.113.1', '192.0.2.0/24')
SITE_B = ('host-b', '203.0.113.2', '198.51.100.0/24')


@pytest.fixture
def server():
    before = set(threading.enumerate())
    with standin.Neutron() as n:
        yield n
    assert n.leftover_servers == []
    assert _new_threads(before) == []


def _new_threads(before, wait=2.0):
    deadline = time.monotonic() + wait
    while True:
        new = [t for t in threading.enumerate()
               if t not in before and t.is_alive()]
        if not new or time.monotonic() > deadline:
            return new
        time.sleep(0.02)


def agent_api():
    """The agent's client and context, as IPsecDriver makes them."""
    return (agent_ipsec.IPsecVpnDriverApi(topics.IPSEC_DRIVER_TOPIC),
            n_context.get_admin_context_without_session())


class AgentEndpoint:
    target = oslo_messaging.Target(version='1.0')

    def __init__(self):
        self.got = queue.Queue()

    def vpnservice_updated(self, context, **kwargs):
        self.got.put(kwargs)

    def next(self, timeout=5.0):
        return self.got.get(timeout=timeout)

    def nothing(self, wait=0.3):
        try:
            extra = self.got.get(timeout=wait)
        except queue.Empty:
            return True
        pytest.fail(f'unexpected notification {extra!r}')


@contextlib.contextmanager
def agent_consumer(host):
    """A consumer made exactly as IPsecDriver.__init__ makes it."""
    endpoint = AgentEndpoint()
    conn = n_rpc.Connection()
    conn.create_consumer(f'{topics.IPSEC_AGENT_TOPIC}.{host}', [endpoint],
                         fanout=False)
    conn.consume_in_threads()
    try:
        yield endpoint
    finally:
        conn.close()


def report(svc_id, conn_ids, status='ACTIVE', pending=True):
    """The agent's update_status shape (IPsecDriver.copy_process_status)."""
    return [{'id': svc_id, 'status': status,
             'updated_pending_status': pending,
             'ipsec_site_connections': {
                 c: {'status': status, 'updated_pending_status': pending}
                 for c in conn_ids}}]


def test_agent_gets_the_payload_over_rpc(server):
    site = server.site(*SITE_A)
    vpn = server.vpn(site, '203.0.113.2',
                     ['198.51.100.0/25', '198.51.100.128/25'], 'psk-a')
    api, ctx = agent_api()
    before = time.monotonic()

    services = api.get_vpn_services_on_host(ctx, 'host-a')

    assert services == server.payload('host-a')
    assert [s['id'] for s in services] == [vpn.service_id]
    svc = services[0]
    assert svc['router_id'] == site.router_id
    assert svc['external_ip'] == '203.0.113.1'
    assert svc['status'] == 'PENDING_CREATE'
    [conn] = svc['ipsec_site_connections']
    assert conn['id'] == vpn.connection_id
    assert conn['status'] == 'PENDING_CREATE'
    assert conn['external_ip'] == '203.0.113.1'
    assert conn['local_cidrs'] == ['192.0.2.0/24']
    assert conn['peer_address'] == '203.0.113.2'
    assert conn['peer_id'] == '203.0.113.2'
    assert conn['peer_cidrs'] == ['198.51.100.0/25', '198.51.100.128/25']
    assert conn['psk'] == 'psk-a'
    assert conn['local_id'] == ''
    assert (conn['ikepolicy']['ike_version'],
            conn['ikepolicy']['auth_algorithm'],
            conn['ikepolicy']['encryption_algorithm'],
            conn['ikepolicy']['pfs']) == ('v2', 'sha256', 'aes-256', 'group14')
    assert (conn['ipsecpolicy']['transform_protocol'],
            conn['ipsecpolicy']['encryption_algorithm']) == ('esp', 'aes-256')
    [(at, host)] = server.fetches
    assert host == 'host-a' and before <= at <= time.monotonic()


def test_non_ip_ids_get_the_at_prefix(server):
    site = server.site(*SITE_A)
    server.vpn(site, '203.0.113.2', ['198.51.100.0/24'], 'psk',
               peer_id='peer.example.org', local_id='203.0.113.1')
    [conn] = server.payload('host-a')[0]['ipsec_site_connections']
    # make_vpnservice_dict prefixes both when either is not an IP
    assert (conn['peer_id'], conn['local_id']) == ('@peer.example.org',
                                                   '@203.0.113.1')


def test_update_status_applies_as_the_server_does(server):
    site = server.site(*SITE_A)
    vpn = server.vpn(site, '203.0.113.2', ['198.51.100.0/24'], 'psk')
    api, ctx = agent_api()

    # without updated_pending_status a PENDING row keeps its status
    sent = time.monotonic()
    api.update_status(ctx, report(vpn.service_id, [vpn.connection_id],
                                  pending=False))
    assert server.status(vpn.service_id) == 'PENDING_CREATE'
    assert server.conn_status(vpn.connection_id) == 'PENDING_CREATE'
    [first] = server.reports
    assert sent <= first.at <= time.monotonic()
    assert first.error is None
    assert first.status == report(vpn.service_id, [vpn.connection_id],
                                  pending=False)

    api.update_status(ctx, report(vpn.service_id, [vpn.connection_id]))
    assert server.status(vpn.service_id) == 'ACTIVE'
    assert server.conn_status(vpn.connection_id) == 'ACTIVE'

    # a row that is not pending takes any status, flag or not
    api.update_status(ctx, report(vpn.service_id, [vpn.connection_id],
                                  status='DOWN', pending=False))
    assert server.conn_status(vpn.connection_id) == 'DOWN'
    assert len(server.reports) == 3


def test_a_report_without_the_connection_flag_fails_on_the_server(server):
    site = server.site(*SITE_A)
    vpn = server.vpn(site, '203.0.113.2', ['198.51.100.0/24'], 'psk')
    api, ctx = agent_api()
    bad = [{'id': vpn.service_id, 'status': 'ACTIVE',
            'updated_pending_status': True,
            'ipsec_site_connections': {vpn.connection_id:
                                       {'status': 'ACTIVE'}}}]
    with pytest.raises(Exception) as raised:
        api.update_status(ctx, bad)
    assert 'updated_pending_status' in str(raised.value)
    assert server.reports[-1].error.startswith('KeyError')
    assert server.status(vpn.service_id) == 'PENDING_CREATE'  # rolled back


def test_psk_update_reaches_the_agent_topic(server):
    site = server.site(*SITE_A)
    with agent_consumer('host-a') as agent_a, \
            agent_consumer('host-b') as agent_b:
        vpn = server.vpn(site, '203.0.113.2', ['198.51.100.0/24'], 'old')
        # the connection's creation is notified too
        assert agent_a.next() == {'router': {'id': site.router_id}}

        with pytest.raises(standin.Refused) as refused:
            server.update_psk(vpn.connection_id, 'new')  # still PENDING
        assert 400 <= refused.value.code < 500
        api, ctx = agent_api()
        api.update_status(ctx, report(vpn.service_id, [vpn.connection_id]))
        server.wait_conn_status(vpn.connection_id, 'ACTIVE')

        sent = time.monotonic()
        server.update_psk(vpn.connection_id, 'new')
        assert agent_a.next() == {'router': {'id': site.router_id}}
        arrived = time.monotonic()
        agent_b.nothing()
    [conn] = server.payload('host-a')[0]['ipsec_site_connections']
    assert conn['psk'] == 'new'
    last = server.casts[-1]
    assert (last.host, last.topic, last.method) == (
        'host-a', 'ipsec_agent.host-a', 'vpnservice_updated')
    assert sent <= last.at <= arrived
    logging.getLogger(__name__).info('psk update to agent: %.3f s',
                                     arrived - sent)


def test_two_sites_on_two_hosts_get_their_own_services(server):
    a = server.site(*SITE_A)
    b = server.site(*SITE_B)
    a_to_b = server.vpn(a, b.external_ip, [b.local_cidr], 'psk-ab')
    b_to_a = server.vpn(b, a.external_ip, [a.local_cidr], 'psk-ab')
    api, ctx = agent_api()

    on_a = api.get_vpn_services_on_host(ctx, 'host-a')
    on_b = api.get_vpn_services_on_host(ctx, 'host-b')

    assert [s['id'] for s in on_a] == [a_to_b.service_id]
    assert [s['id'] for s in on_b] == [b_to_a.service_id]
    [ca] = on_a[0]['ipsec_site_connections']
    [cb] = on_b[0]['ipsec_site_connections']
    assert (ca['external_ip'], ca['local_cidrs'], ca['peer_address'],
            ca['peer_cidrs']) == ('203.0.113.1', ['192.0.2.0/24'],
                                  '203.0.113.2', ['198.51.100.0/24'])
    assert (cb['external_ip'], cb['local_cidrs'], cb['peer_address'],
            cb['peer_cidrs']) == ('203.0.113.2', ['198.51.100.0/24'],
                                  '203.0.113.1', ['192.0.2.0/24'])
    # one external network for both
    assert a.external_network_id == b.external_network_id

    # a change on one site is notified to its host only
    api.update_status(ctx, report(b_to_a.service_id, [b_to_a.connection_id]))
    with agent_consumer('host-a') as agent_a, \
            agent_consumer('host-b') as agent_b:
        server.update_psk(b_to_a.connection_id, 'psk-2')
        assert agent_b.next() == {'router': {'id': b.router_id}}
        agent_a.nothing()


def test_deletes_are_notified_and_leave_the_payload(server):
    site = server.site(*SITE_A)
    vpn = server.vpn(site, '203.0.113.2', ['198.51.100.0/24'], 'psk')
    # no consumer yet: dropped, as AMQP drops a cast with no queue bound
    [created] = server.casts
    assert not created.delivered
    with agent_consumer('host-a') as agent:
        agent.nothing()  # the old cast does not turn up later
        server.delete_connection(vpn.connection_id)  # allowed while PENDING
        assert agent.next() == {'router': {'id': site.router_id}}
        # a service without connections is not in the payload
        assert server.payload('host-a') == []
        server.delete_service(vpn.service_id)
        assert agent.next() == {'router': {'id': site.router_id}}
    assert [(c.method, c.delivered) for c in server.casts] == [
        ('vpnservice_updated', False), ('vpnservice_updated', True),
        ('vpnservice_updated', True)]


def test_service_update_and_delete_vpn(server):
    site = server.site(*SITE_A)
    with agent_consumer('host-a') as agent:
        vpn = server.vpn(site, '203.0.113.2', ['198.51.100.0/24'], 'psk')
        agent.next()
        api, ctx = agent_api()
        api.update_status(ctx, report(vpn.service_id, [vpn.connection_id]))
        server.wait_status(vpn.service_id, 'ACTIVE')
        server.update_service(vpn.service_id, admin_state_up=False)
        assert agent.next() == {'router': {'id': site.router_id}}
        assert server.payload('host-a')[0]['admin_state_up'] is False
        server.delete_vpn(vpn)  # connection, policies, service
        assert agent.next() == {'router': {'id': site.router_id}}
        assert agent.next() == {'router': {'id': site.router_id}}
        agent.nothing()
    assert server.payload('host-a') == []
    with pytest.raises(Exception, match='could not be found'):
        server.status(vpn.service_id)


def test_the_stock_ipsec_driver_goes_active_through_it(server):
    """neutron-vpnaas's own agent driver, only its commands stubbed out."""
    from neutron_vpnaas.services.vpn.device_drivers import strongswan_ipsec
    site = server.site(*SITE_A)
    conn_ids = []

    class Process(strongswan_ipsec.StrongSwanProcess):
        def _get_strongswan_piddir(self):
            return '/var/run'

        def copy_and_overwrite(self, from_path, to_path):
            pass  # sudo cp -r /etc/strongswan.d

        def _execute(self, cmd, check_exit_code=True, extra_ok_codes=None):
            if cmd[-1] == 'status':
                return ''.join(f'{c}{{1}}:  INSTALLED, TUNNEL, reqid 1\n'
                               for c in conn_ids)
            return ''

    class Driver(strongswan_ipsec.StrongSwanDriver):
        def create_process(self, process_id, vpnservice, namespace):
            return Process(self.conf, process_id, vpnservice, namespace)

    # what the L3 agent extension hands over (VPNService keeps only .conf)
    driver = Driver(types.SimpleNamespace(conf=cfg.CONF), 'host-a')
    try:
        driver.create_router(types.SimpleNamespace(
            router_id=site.router_id,
            router={'id': site.router_id, 'ha': False, 'distributed': False},
            ns_name=f'qrouter-{site.router_id}',
            iptables_manager=mock.MagicMock()))
        vpn = server.vpn(site, '203.0.113.2', ['198.51.100.0/24'], 'psk')
        conn_ids.append(vpn.connection_id)
        # notification -> sync -> get_vpn_services_on_host -> update_status
        server.wait_conn_status(vpn.connection_id, 'ACTIVE', timeout=5)
        assert server.status(vpn.service_id) == 'ACTIVE'
        sent = server.wait_report(
            lambda r: r.status[0]['id'] == vpn.service_id, timeout=1)
        assert sent.status[0]['updated_pending_status'] is True
        fetched = len(server.fetches)
        server.update_psk(vpn.connection_id, 'new')
        deadline = time.monotonic() + 5
        while len(server.fetches) == fetched:
            assert time.monotonic() < deadline, 'the agent did not sync'
            time.sleep(0.02)
    finally:
        driver.process_status_cache_check.stop()
        driver.process_status_cache_check.wait()
        driver.conn.close()
        # oslo.service's looping call leaves its executor in a reference
        # cycle; its worker thread ends only once that is collected
        gc.collect()


def test_close_leaves_nothing_behind():
    before = set(threading.enumerate())
    levels = {name: logging.getLogger(name).level
              for name in ('neutron', 'oslo_db')}
    n = standin.Neutron()
    site = n.site(*SITE_A)
    n.vpn(site, '203.0.113.2', ['198.51.100.0/24'], 'psk')
    # an agent that forgets to close its consumer
    conn = n_rpc.Connection()
    conn.create_consumer('ipsec_agent.host-a', [AgentEndpoint()])
    conn.consume_in_threads()
    n.close()
    n.close()  # twice is fine

    assert n.leftover_servers == conn.servers
    assert _new_threads(before) == []
    assert n_rpc.TRANSPORT is None
    # the database was closed: a new connection finds an empty one
    with lib_fixture.StaticSqlFixture.engine.connect() as db:
        assert db.exec_driver_sql(
            'SELECT count(*) FROM sqlite_master').scalar() == 0
    assert {name: logging.getLogger(name).level for name in levels} == levels

    # the next one starts from an empty database
    with standin.Neutron() as again:
        assert again.core.get_agents(again.ctx) == []
        with pytest.raises(RuntimeError):
            standin.Neutron()  # one at a time
    assert _new_threads(before) == []
