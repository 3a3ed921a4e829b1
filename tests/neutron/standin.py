"""A Neutron server stand-in for tests: neutron-vpnaas's own server code.

Nothing here writes a payload by hand. The stand-in builds neutron-vpnaas's
own unit-test base, ``VPNPluginDbTestCase``, over in-memory SQLite with the
real ``VPNDriverPlugin`` and its default provider, the real
``IPsecVPNDriver``. The resources are made through the real REST API layer
(the test base's WSGI apps), which calls the real plugin, which calls the
driver's notification code. The agent-facing RPC endpoint is
``IPsecVpnDriverCallBack``, consuming topic ``ipsec_driver`` on the
oslo.messaging transport the test base sets up (``fake:/``).

Use it from a plain pytest test, not only from a unittest case::

    with Neutron() as neutron:
        a = neutron.site('host-a', '203.0.113.1', '192.0.2.0/24')
        v = neutron.vpn(a, '203.0.113.2', ['198.51.100.0/24'], 'secret')
        ...  # an agent-side driver in this process talks to it over RPC

What agent-side code in the same process has to do:

* Use the RPC transport the stand-in's test base made
  (``neutron_lib.rpc.TRANSPORT``, ``fake:/``). Do not call
  ``n_rpc.init()``: it would replace that global transport, which the
  stand-in cleans up when it closes. Do not call ``n_rpc.cleanup()``: it
  empties every fake queue, the server's included, and leaves no transport.
* Share the global ``cfg.CONF``. The test base parses it (neutron's test
  ``neutron.conf``, ``state_path`` in a temporary directory) and resets it
  when the stand-in closes. Set agent options with ``set_override``; don't
  call ``cfg.CONF(...)`` again. ``rpc_response_timeout`` is ``rpc_timeout``
  (10 s). The test base had set it to 0, which makes every call time out.
* Create the consumer the way the stock ``IPsecDriver`` does:
  ``conn = n_rpc.Connection()``, then
  ``conn.create_consumer('ipsec_agent.<host>', endpoints, fanout=False)``,
  then ``conn.consume_in_threads()``. Call the server through
  ``IPsecVpnDriverApi('ipsec_driver')`` (``n_rpc.get_client``). The test
  base mocks ``Connection.consume_in_threads``. The stand-in puts the real
  one back while it runs, and when it closes it stops any server still
  consuming.
* Create the agent after ``Neutron()`` and close it before ``close()``. A
  consumer made after a notification was sent does not get that
  notification, as on RabbitMQ (see ``_has_queue``). An agent syncs when it
  starts anyway.

A process holds one stand-in at a time, because the RPC transport,
``cfg.CONF``, the plugin directory and the SQLite engine are all global.
"""
from __future__ import annotations

import neutron  # noqa: F401  -- first: picks oslo.service's threading backend

import dataclasses
import ipaddress
import json
import logging
import threading
import time
import unittest
import warnings
from unittest import mock

from neutron.conf import service as service_conf
from neutron_lib import constants as lib_constants
from neutron_lib import context as n_context
from neutron_lib.db import model_base
from neutron_lib import fixture as lib_fixture
from neutron_lib import rpc as n_rpc
from neutron_lib.plugins import constants as p_constants
from neutron_lib.plugins import directory
from oslo_config import cfg
from oslo_serialization import jsonutils

from neutron_vpnaas.services.vpn.common import topics
from neutron_vpnaas.services.vpn.service_drivers import base_ipsec
from neutron_vpnaas.services.vpn.service_drivers import ipsec as ipsec_driver
from neutron_vpnaas.tests.unit.db.vpn import test_vpn_db

try:  # private; only used to make closing quicker
    from futurist._thread import ThreadWorker as _ThreadWorker
except ImportError:
    _ThreadWorker = None

# The real method, taken before any test base mocks it (RPCFixture replaces
# it with a Mock so that unit tests never start listeners).
_CONSUME_IN_THREADS = n_rpc.Connection.__dict__['consume_in_threads']
assert not isinstance(_CONSUME_IN_THREADS, mock.Mock), (
    'import tests/neutron/standin.py before anything mocks '
    'neutron_lib.rpc.Connection.consume_in_threads')

# neutron-server registers rpc_response_max_timeout (neutron/service.py), and
# neutron-lib's RPC client reads it when a call times out; without it a
# timeout turns into NoSuchOptError.
service_conf.register_service_opts(service_conf.RPC_EXTRA_OPTS, cfg.CONF)

VPN_PLUGIN = 'neutron_vpnaas.services.vpn.plugin.VPNDriverPlugin'
PROVIDER = 'vpnaas'  # the name VPNPluginDbTestCase gives IPsecVPNDriver

# Values strongSwan can do; the 29 database has no sha1 or 3des anyway.
IKE_DEFAULTS = {
    'auth_algorithm': 'sha256', 'encryption_algorithm': 'aes-256',
    'ike_version': 'v2', 'pfs': 'group14', 'phase1_negotiation_mode': 'main',
    'lifetime': {'units': 'seconds', 'value': 3600},
}
IPSEC_DEFAULTS = {
    'auth_algorithm': 'sha256', 'encryption_algorithm': 'aes-256',
    'pfs': 'group14', 'transform_protocol': 'esp',
    'encapsulation_mode': 'tunnel',
    'lifetime': {'units': 'seconds', 'value': 3600},
}

# Loggers and warning filters the test base changes and never puts back.
_QUIETED_LOGGERS = ('neutron', 'neutron_lib', 'stevedore', 'oslo_policy',
                    'oslo_concurrency', 'oslo_db', 'alembic')

_running: Neutron | None = None


def wire(obj):
    """``obj`` as it arrives at the other end of a real RPC transport.

    oslo.messaging's AMQP drivers send ``jsonutils.dumps(obj)`` (its default
    is ``to_primitive``). The fake driver passes Python objects by
    reference, and the server's payload holds SQLAlchemy rows inside
    ``subnet``, so the stand-in sends this copy instead.
    """
    return json.loads(jsonutils.dumps(obj))


class Refused(RuntimeError):
    """The Neutron API refused a request. ``code`` is the HTTP status.

    For example, an update of a connection whose row is still PENDING_*
    gets a 4xx status.
    """

    def __init__(self, method, path, code, body):
        super().__init__(f'{method} {path}: HTTP {code}: {body}')
        self.code = code
        self.body = body


@dataclasses.dataclass(frozen=True)
class Site:
    host: str
    agent_id: str
    router_id: str
    external_ip: str
    external_network_id: str
    external_subnet_id: str
    network_id: str
    subnet_id: str
    local_cidr: str


@dataclasses.dataclass(frozen=True)
class Vpn:
    host: str
    router_id: str
    service_id: str
    connection_id: str
    ikepolicy_id: str
    ipsecpolicy_id: str


@dataclasses.dataclass(frozen=True)
class Report:
    """One update_status call the server received."""
    at: float            # time.monotonic() when it arrived
    status: list         # the agent's list, in wire form
    error: str | None    # what the server raised while applying it, if any


@dataclasses.dataclass(frozen=True)
class Cast:
    """One notification the server sent to an agent."""
    at: float
    host: str
    topic: str
    method: str
    kwargs: dict
    delivered: bool      # False: no consumer ever listened on the topic


class _Case(test_vpn_db.VPNPluginDbTestCase):
    """neutron-vpnaas's own DB test base with the real driver plugin."""

    def setUp(self):
        super().setUp(vpnaas_plugin=VPN_PLUGIN)

    def runTest(self):
        """unittest needs a method name to build a case; nothing runs."""


class _CallBack(base_ipsec.IPsecVpnDriverCallBack):
    """The real IPsecVpnDriverCallBack, with a lock and a record.

    The in-memory SQLite database is one connection (StaticPool) shared by
    all threads, so every DB user in the stand-in holds one lock. Arguments
    and replies go through a JSON round trip, as on a real transport.
    """

    def __init__(self, driver, standin):
        super().__init__(driver)
        self._standin = standin

    def get_vpn_services_on_host(self, context, host=None):
        at = time.monotonic()
        with self._standin._db:
            services = wire(super().get_vpn_services_on_host(
                context, host=host))
        self._standin._note_fetch(at, host)
        return services

    def update_status(self, context, status):
        at = time.monotonic()
        status = wire(status)
        error = None
        try:
            with self._standin._db:
                super().update_status(context, status=status)
        except Exception as e:  # the agent gets it as a RemoteError
            error = f'{type(e).__name__}: {e}'
            raise
        finally:
            self._standin._note_report(Report(at, status, error))


class _AmqpRouting:
    """The driver's RPC client, made to route casts as AMQP does.

    The server notifies an agent with ``Target(topic='ipsec_agent',
    server=<host>)``. On RabbitMQ that is routing key ``ipsec_agent.<host>``,
    and it reaches the agent's consumer, which ``IPsecDriver`` creates on
    topic ``ipsec_agent.<host>``. oslo.messaging's fake driver routes a cast
    that names a server only to the ``(topic, server)`` queue, so the same
    cast never reaches that consumer (research 2.8). This wrapper turns
    ``prepare(server=H)`` into ``prepare(topic='ipsec_agent.H')``, which is
    where AMQP delivers it. Everything else in
    ``BaseIPsecVpnAgentApi._agent_notification`` stays the real code: which
    agents host the router, the version, the method and its arguments.
    """

    def __init__(self, client, topic, record):
        self._client = client
        self._topic = topic
        self._record = record

    def __getattr__(self, name):
        return getattr(self._client, name)

    def prepare(self, server=None, **kwargs):
        if server is None:
            return self._client.prepare(**kwargs)
        topic = f'{self._topic}.{server}'
        return _RecordingCast(self._client.prepare(topic=topic, **kwargs),
                              server, topic, self._record)


class _RecordingCast:
    def __init__(self, cctxt, host, topic, record):
        self._cctxt = cctxt
        self._host = host
        self._topic = topic
        self._record = record

    def __getattr__(self, name):
        return getattr(self._cctxt, name)

    def cast(self, context, method, **kwargs):
        delivered = _has_queue(self._topic)
        self._record(Cast(time.monotonic(), self._host, self._topic, method,
                          wire(kwargs), delivered))
        if delivered:
            self._cctxt.cast(context, method, **kwargs)


def _has_queue(topic):
    """Whether a consumer ever listened on ``topic``.

    On RabbitMQ a cast whose routing key has no bound queue is dropped, and
    an agent's queue outlives the agent (``amqp_auto_delete`` is False), so
    a restarted agent gets what was sent while it was away. The fake driver
    makes the queue at the first cast instead, so an agent started after
    ``vpn()`` would get that old notification as if it were new. The
    stand-in does not send when there is no queue. The check reads the fake
    driver's own tables. If they ever change, it sends everything.
    """
    try:
        exchange = n_rpc.TRANSPORT._driver._exchange_manager.get_exchange(
            None)
        with exchange._queues_lock:
            return any(t == topic for t, _ in exchange._topic_queues)
    except AttributeError:
        return True


class Neutron:
    """A Neutron server: DB, VPN plugin and driver, RPC endpoint.

    ``Neutron()`` starts everything. ``close()`` (or leaving a ``with``
    block) undoes it.

    ``rpc_timeout`` sets ``rpc_response_timeout`` for every RPC client in the
    process. The test base sets it to 0, which makes every call time out at
    once.
    """

    def __init__(self, rpc_timeout: float = 10):
        global _running
        if _running is not None:
            raise RuntimeError('a Neutron stand-in is already running in this '
                               'process; close it first')
        self._timeout = rpc_timeout
        self._db = threading.RLock()
        self._seen = threading.Condition()
        self._reports: list[Report] = []
        self._casts: list[Cast] = []
        self._fetches: list[tuple[float, str]] = []
        self._agents: dict[str, dict] = {}
        self._external: dict[str, tuple[str, str]] = {}
        self._servers = []   # every RPC server started while we run
        self._closed = False
        self._saved = _save_globals()
        self.leftover_servers: list = []
        _running = self
        self.case = _Case('runTest')
        try:
            self._start()
        except BaseException as e:
            try:
                self.close()
            except Exception as cleanup:
                e.add_note(f'and closing the half-started stand-in: '
                           f'{cleanup}')
            raise

    # -- start and stop -------------------------------------------------

    def _start(self):
        case = self.case
        _reopen_sqlite()
        case.setUp()
        _saw_setup(self._saved)
        cfg.CONF.set_override('rpc_response_timeout', self._timeout)
        # Put the real consume_in_threads back, so that a consumer made by
        # the server or by an agent in this process really consumes. The
        # patch is undone by the test base's cleanups.
        standin = self

        def consume_in_threads(conn):
            standin._servers.extend(conn.servers)
            return _CONSUME_IN_THREADS(conn)

        patcher = mock.patch.object(n_rpc.Connection, 'consume_in_threads',
                                    consume_in_threads)
        patcher.start()
        case.addCleanup(patcher.stop)
        # An RPC server's worker threads look for work, or for a stop, once
        # a second (futurist's MAX_IDLE_FOR), so each server.wait() took a
        # second. Look ten times a second while the stand-in runs.
        if hasattr(_ThreadWorker, 'MAX_IDLE_FOR'):
            patcher = mock.patch.object(_ThreadWorker, 'MAX_IDLE_FOR', 0.1)
            patcher.start()
            case.addCleanup(patcher.stop)

        self.ctx = n_context.get_admin_context()
        self.core = directory.get_plugin()
        self.l3 = directory.get_plugin(p_constants.L3)
        self.plugin = directory.get_plugin(p_constants.VPN)
        self.driver = self.plugin.drivers[PROVIDER]
        if not isinstance(self.driver, ipsec_driver.IPsecVPNDriver):
            raise RuntimeError(f'provider {PROVIDER} is {self.driver!r}, not '
                               'IPsecVPNDriver')
        agent_rpc = self.driver.agent_rpc
        agent_rpc.client = _AmqpRouting(agent_rpc.client, agent_rpc.topic,
                                        self._note_cast)
        # The server side of the driver, as IPsecVPNDriver.create_rpc_conn
        # makes it, but consuming for real. The driver's own consumer was
        # never started (consume_in_threads was a Mock during setUp).
        self.callback = _CallBack(self.driver, self)
        self._conn = n_rpc.Connection()
        self._conn.create_consumer(topics.IPSEC_DRIVER_TOPIC,
                                   [self.callback], fanout=False)
        self._conn.consume_in_threads()

    def close(self):
        """Stop consuming, run the test base's cleanups, close SQLite.

        Raises RuntimeError if a cleanup failed. Servers that an agent left
        consuming are stopped too, and listed in ``leftover_servers``.
        """
        if self._closed:
            return
        self._closed = True
        errors = []
        ours = getattr(self, '_conn', None)
        ours = ours.servers if ours else []
        running = [server for server in self._servers if server._started]
        self.leftover_servers = [s for s in running if s not in ours]
        for server in running:  # all first: each wait takes up to 0.1 s
            try:
                server.stop()
            except Exception as e:
                errors.append(f'stopping {server!r}: {e!r}')
        for server in running:
            try:
                server.wait()
            except Exception as e:
                errors.append(f'waiting for {server!r}: {e!r}')
        errors.extend(_do_cleanups(self.case))
        try:
            _close_sqlite()
        except Exception as e:
            errors.append(f'closing SQLite: {e!r}')
        _restore_globals(self._saved)
        global _running
        _running = None
        if errors:
            raise RuntimeError('Neutron stand-in cleanup failed:\n' +
                               '\n'.join(errors))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- what the server received and sent ------------------------------

    def _note_report(self, report):
        with self._seen:
            self._reports.append(report)
            self._seen.notify_all()

    def _note_cast(self, cast):
        with self._seen:
            self._casts.append(cast)
            self._seen.notify_all()

    def _note_fetch(self, at, host):
        with self._seen:
            self._fetches.append((at, host))
            self._seen.notify_all()

    @property
    def reports(self) -> list[Report]:
        """Every update_status received, oldest first (a copy)."""
        with self._seen:
            return list(self._reports)

    @property
    def casts(self) -> list[Cast]:
        """Every notification sent to an agent, oldest first (a copy)."""
        with self._seen:
            return list(self._casts)

    @property
    def fetches(self) -> list[tuple[float, str]]:
        """(time.monotonic(), host) of every get_vpn_services_on_host."""
        with self._seen:
            return list(self._fetches)

    def wait_report(self, predicate=lambda report: True, *, after=0,
                    timeout=10.0) -> Report:
        """The first report from index ``after`` on that ``predicate``
        accepts; waits up to ``timeout`` seconds for it."""
        deadline = time.monotonic() + timeout
        with self._seen:
            while True:
                for report in self._reports[after:]:
                    if predicate(report):
                        return report
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(
                        f'no matching update_status in {timeout} s; got '
                        f'{self._reports[after:]!r}')
                self._seen.wait(left)

    # -- topology --------------------------------------------------------

    def _api(self, method, resource, id=None, body=None, as_admin=False):
        """One request to the real API (routes, policy, attribute
        validation and defaults, then the plugin)."""
        case = self.case
        if method == 'POST':
            req = case.new_create_request(resource, body, case.fmt,
                                          as_admin=as_admin)
        elif method == 'PUT':
            req = case.new_update_request(resource, body, id,
                                          as_admin=as_admin)
        elif method == 'DELETE':
            req = case.new_delete_request(resource, id, as_admin=as_admin)
        else:
            req = case.new_show_request(resource, id, as_admin=as_admin)
        with self._db:
            res = req.get_response(case._api_for_resource(resource))
        if res.status_int >= 400:
            raise Refused(method, f'{resource}/{id or ""}', res.status_int,
                          res.text)
        return case.deserialize(case.fmt, res) if res.body else None

    def _heartbeat(self, host=None):
        """Report the L3 agents' state, as a live L3 agent does every 30 s.

        The server notifies only agents whose heartbeat is younger than
        ``agent_down_time`` (75 s), and a system test can run longer.
        """
        with self._db:
            for h, state in self._agents.items():
                if host in (None, h):
                    self.core.create_or_update_agent(self.ctx, state)

    def _agent(self, host):
        if host not in self._agents:
            self._agents[host] = {
                'host': host, 'agent_type': lib_constants.AGENT_TYPE_L3,
                'binary': 'neutron-l3-agent', 'topic': 'l3_agent',
                'configurations': {'agent_mode':
                                   lib_constants.L3_AGENT_MODE_LEGACY}}
        self._heartbeat(host)
        with self._db:
            return self.core._get_agent_by_type_and_host(
                self.ctx, lib_constants.AGENT_TYPE_L3, host).id

    def _external_network(self, cidr):
        if cidr not in self._external:
            net = self._api('POST', 'networks', body={'network': {
                'name': f'external {cidr}', 'admin_state_up': True,
                'router:external': True,
                'project_id': self.case._project_id}}, as_admin=True)
            net_id = net['network']['id']
            version = ipaddress.ip_network(cidr).version
            # No gateway: the routers' addresses can then be any address
            # of the range, the first one included.
            sub = self._api('POST', 'subnets', body={'subnet': {
                'network_id': net_id, 'cidr': cidr, 'ip_version': version,
                'gateway_ip': None, 'enable_dhcp': False,
                'project_id': self.case._project_id}}, as_admin=True)
            self._external[cidr] = (net_id, sub['subnet']['id'])
        return self._external[cidr]

    def site(self, host: str, router_external_ip: str, local_cidr: str, *,
             external_cidr: str | None = None) -> Site:
        """An L3 agent on ``host`` hosting a router with the gateway address
        ``router_external_ip`` and an interface on subnet ``local_cidr``.

        The external network is ``external_cidr``, by default the /24 (or
        /64) around ``router_external_ip``; sites on the same range share
        it.
        """
        address = ipaddress.ip_address(router_external_ip)
        if external_cidr is None:
            prefix = 24 if address.version == 4 else 64
            external_cidr = str(ipaddress.ip_network(
                f'{address}/{prefix}', strict=False))
        local = ipaddress.ip_network(local_cidr)
        agent_id = self._agent(host)
        ext_net, ext_sub = self._external_network(external_cidr)
        router = self._api('POST', 'routers', body={'router': {
            'name': f'router {host} {router_external_ip}',
            'admin_state_up': True, 'project_id': self.case._project_id,
            'external_gateway_info': {
                'network_id': ext_net,
                'external_fixed_ips': [{'subnet_id': ext_sub,
                                        'ip_address': str(address)}]}}},
            as_admin=True)['router']
        router_id = router['id']
        gateway_ips = [ip['ip_address'] for ip in
                       router['external_gateway_info']['external_fixed_ips']]
        if gateway_ips != [str(address)]:
            raise RuntimeError(f'router {router_id} got gateway addresses '
                               f'{gateway_ips}, not {address}')
        net_id = self._api('POST', 'networks', body={'network': {
            'name': f'local {local_cidr}', 'admin_state_up': True,
            'project_id': self.case._project_id}})['network']['id']
        subnet_id = self._api('POST', 'subnets', body={'subnet': {
            'network_id': net_id, 'cidr': str(local),
            'ip_version': local.version,
            'project_id': self.case._project_id}})['subnet']['id']
        with self._db:
            req = self.case.new_action_request(
                'routers', {'subnet_id': subnet_id}, router_id,
                'add_router_interface')
            res = req.get_response(self.case.ext_api)
            if res.status_int >= 400:
                raise Refused('PUT', f'routers/{router_id}/'
                              'add_router_interface', res.status_int,
                              res.text)
            # Bind the router to this host's agent; the scheduler would
            # pick any live agent.
            self.core.add_router_to_l3_agent(self.ctx, agent_id, router_id)
            hosts = [a.host for a in self.l3.get_l3_agents_hosting_routers(
                self.ctx, [router_id])]
        if hosts != [host]:
            raise RuntimeError(f'router {router_id} is on {hosts}, not on '
                               f'[{host!r}]')
        return Site(host=host, agent_id=agent_id, router_id=router_id,
                    external_ip=str(address), external_network_id=ext_net,
                    external_subnet_id=ext_sub, network_id=net_id,
                    subnet_id=subnet_id, local_cidr=str(local))

    # -- VPN resources ----------------------------------------------------

    def vpn(self, site: Site, peer_address: str, peer_cidrs: list[str],
            psk: str, peer_id: str | None = None, *,
            local_id: str | None = None, ike: dict | None = None,
            ipsec: dict | None = None, initiator: str = 'bi-directional',
            mtu: int = 1500, dpd: dict | None = None,
            admin_state_up: bool = True, service_id: str | None = None,
            name: str | None = None) -> Vpn:
        """An IKE policy, an IPsec policy, a VPN service on the site's router
        and subnet (or ``service_id``, an existing one), and an IPsec site
        connection. All of it goes through the real API; the rows start
        PENDING_CREATE, and the plugin notifies the site's agent.

        ``ike`` and ``ipsec`` override IKE_DEFAULTS and IPSEC_DEFAULTS.
        ``peer_id`` defaults to ``peer_address``.
        """
        project = self.case._project_id
        name = name or f'{site.host} to {peer_address}'
        self._heartbeat()
        ike_id = self._api('POST', 'ikepolicies', body={'ikepolicy': {
            'name': name, 'project_id': project,
            **IKE_DEFAULTS, **(ike or {})}})['ikepolicy']['id']
        ipsec_id = self._api('POST', 'ipsecpolicies', body={'ipsecpolicy': {
            'name': name, 'project_id': project,
            **IPSEC_DEFAULTS, **(ipsec or {})}})['ipsecpolicy']['id']
        if service_id is None:
            service_id = self._api('POST', 'vpnservices', body={'vpnservice': {
                'name': name, 'project_id': project, 'admin_state_up': True,
                'router_id': site.router_id,
                'subnet_id': site.subnet_id}})['vpnservice']['id']
        conn = {
            'name': name, 'project_id': project,
            'peer_address': peer_address,
            'peer_id': peer_id if peer_id is not None else peer_address,
            'peer_cidrs': list(peer_cidrs), 'psk': psk,
            'initiator': initiator, 'mtu': mtu,
            'admin_state_up': admin_state_up,
            'vpnservice_id': service_id, 'ikepolicy_id': ike_id,
            'ipsecpolicy_id': ipsec_id}
        if local_id is not None:
            conn['local_id'] = local_id
        if dpd is not None:
            conn['dpd'] = dpd
        conn_id = self._api('POST', 'ipsec-site-connections', body={
            'ipsec_site_connection': conn})['ipsec_site_connection']['id']
        return Vpn(host=site.host, router_id=site.router_id,
                   service_id=service_id, connection_id=conn_id,
                   ikepolicy_id=ike_id, ipsecpolicy_id=ipsec_id)

    def update_connection(self, conn_id: str, **fields) -> dict:
        """PUT the fields; the plugin then notifies the router's agents.

        A row still PENDING_* is refused (``Refused``), as by the real
        server: wait for ACTIVE (``wait_conn_status``) first.
        """
        self._heartbeat()
        return self._api('PUT', 'ipsec-site-connections', conn_id, body={
            'ipsec_site_connection': fields})['ipsec_site_connection']

    def update_psk(self, conn_id: str, psk: str) -> dict:
        return self.update_connection(conn_id, psk=psk)

    def update_service(self, service_id: str, **fields) -> dict:
        self._heartbeat()
        return self._api('PUT', 'vpnservices', service_id, body={
            'vpnservice': fields})['vpnservice']

    def delete_connection(self, conn_id: str) -> None:
        """DELETE; the row goes at once, then the agents are notified."""
        self._heartbeat()
        self._api('DELETE', 'ipsec-site-connections', conn_id)

    def delete_service(self, service_id: str) -> None:
        """DELETE a service; the API refuses one that has connections."""
        self._heartbeat()
        self._api('DELETE', 'vpnservices', service_id)

    def delete_vpn(self, vpn: Vpn, *, service: bool = True) -> None:
        """The connection, its policies and (``service``) the service."""
        self.delete_connection(vpn.connection_id)
        self._api('DELETE', 'ikepolicies', vpn.ikepolicy_id)
        self._api('DELETE', 'ipsecpolicies', vpn.ipsecpolicy_id)
        if service:
            self.delete_service(vpn.service_id)

    # -- reading ------------------------------------------------------------

    def status(self, service_id: str) -> str:
        """The VPN service's status in the database."""
        with self._db:
            return self.plugin.get_vpnservice(self.ctx, service_id)['status']

    def conn_status(self, conn_id: str) -> str:
        """The IPsec site connection's status in the database."""
        with self._db:
            return self.plugin.get_ipsec_site_connection(
                self.ctx, conn_id)['status']

    def connection(self, conn_id: str) -> dict:
        with self._db:
            return wire(self.plugin.get_ipsec_site_connection(self.ctx,
                                                              conn_id))

    def wait_status(self, service_id, status, timeout=10.0):
        _wait(lambda: self.status(service_id), status, timeout,
              f'service {service_id}')

    def wait_conn_status(self, conn_id, status, timeout=10.0):
        _wait(lambda: self.conn_status(conn_id), status, timeout,
              f'connection {conn_id}')

    def payload(self, host: str) -> list[dict]:
        """What get_vpn_services_on_host returns for ``host``, wire form.

        The real callback computes it; this reads it directly, without RPC
        and without a record in ``fetches``.
        """
        with self._db:
            return wire(self.driver.endpoints[0].get_vpn_services_on_host(
                self.ctx, host=host))


def _wait(read, want, timeout, what):
    deadline = time.monotonic() + timeout
    while True:
        got = read()
        if got == want:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f'{what} is {got}, not {want}, after '
                               f'{timeout} s')
        time.sleep(0.02)


def _do_cleanups(case) -> list[str]:
    """Run the case's cleanups (the addCleanup stack) and say what failed.

    unittest's doCleanups keeps going past a failing cleanup and reports it
    to the running test's result; outside a run there is no result, so the
    errors would vanish. Give it one.
    """
    result = unittest.TestResult()
    case._outcome = unittest.case._Outcome(result)
    try:
        case.doCleanups()
    finally:
        case._outcome = None
    return [tb for _, tb in result.errors + result.failures]


_closed_engine = None  # the engine _close_sqlite closed, for _reopen_sqlite


def _close_sqlite():
    """Close the in-memory SQLite database.

    neutron-lib's StaticSqlFixture keeps one engine (a StaticPool: one
    connection) for the whole process, and its cleanup only deletes the
    rows. Disposing of the pool closes that connection, and the in-memory
    database goes with it. The fixture is told it has no database, so any
    other neutron test in the process builds its own. The next stand-in
    takes the old engine back and creates the schema on a new connection:
    the engine keeps SQLAlchemy's statement cache, and with a new engine
    each stand-in was about a second slower.
    """
    global _closed_engine
    cls = lib_fixture.StaticSqlFixture
    engine = vars(cls).get('engine')
    if engine is not None and cls._GLOBAL_RESOURCES:
        engine.dispose()
        cls._GLOBAL_RESOURCES = False
        _closed_engine = engine


def _reopen_sqlite():
    global _closed_engine
    cls = lib_fixture.StaticSqlFixture
    engine, _closed_engine = _closed_engine, None
    if engine is None:
        return
    if cls._GLOBAL_RESOURCES:  # another test built a database meanwhile
        engine.dispose()
        return
    model_base.BASEV2.metadata.create_all(engine)
    cls.engine = engine
    cls._GLOBAL_RESOURCES = True


def _save_globals():
    root = logging.getLogger()
    return {
        'filters': list(warnings.filters),
        'root': (root.level, list(root.handlers)),
        'levels': {name: logging.getLogger(name).level
                   for name in _QUIETED_LOGGERS},
        'added': [],
    }


def _saw_setup(saved):
    """Note the root handlers the test base added (oslotest's
    ``logging.basicConfig``, which adds one only when there was none)."""
    level, handlers = saved['root']
    saved['added'] = [h for h in logging.getLogger().handlers
                      if h not in handlers]


def _restore_globals(saved):
    warnings.filters[:] = saved['filters']
    warnings._filters_mutated()
    root = logging.getLogger()
    if saved['added']:
        for handler in saved['added']:
            root.removeHandler(handler)
        root.setLevel(saved['root'][0])
    for name, level in saved['levels'].items():
        logging.getLogger(name).setLevel(level)
