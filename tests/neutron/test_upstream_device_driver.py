"""neutron-vpnaas's own device-driver unit tests, run against vpnd's drivers.

The stock tests (neutron_vpnaas/tests/unit/services/vpn/device_drivers:
test_ipsec.py's IPsecStrongswanDeviceDriverLegacy and ...DVR, and
test_ovn_ipsec.py's TestOvnStrongSwanDriver) are subclassed with
`driver=VpndIPsecDriver` / `VpndOvnDriver` and `ipsec_process=VpndRouter`,
so the agent-facing contract they pin (RPC, sync, NAT exemption rules,
namespaces, create/destroy router, HA hooks) is checked on our classes
with the upstream assertions themselves. A test whose premise vpnd does
not share (`ipsec status` parsing, the stock 60 s report loop's cache) is
overridden here with the vpnd equivalent, its docstring saying why.
Below them, vpnd's own behaviour: several services on one router, syncs
that change nothing write nothing, stale files go and operators' stay,
HA backups write but do not report, the namespace each agent gives.

Every test gets its own vpnd config (state_dir, run_dir, data_dir in a
temp dir) through `[vpnd] config_file`, and stops its driver: the status
watch thread must be gone when the test ends.

Run with ``python -m pytest -p neutron`` (neutron first: it picks
oslo.service's threading backend).
"""
import neutron  # noqa: F401  -- first: picks oslo.service's threading backend

import copy
import json
import os
import shutil
import tempfile
import time
import types

from neutron_lib import constants
from oslo_utils import uuidutils

from neutron_vpnaas.services.vpn import agent as vpn_agent
from neutron_vpnaas.services.vpn.device_drivers import ovn_ipsec
# Modules, not classes: a TestCase imported by name would be collected and
# run again here with the stock drivers.
from neutron_vpnaas.tests.unit.services.vpn.device_drivers import test_ipsec as upstream
from neutron_vpnaas.tests.unit.services.vpn.device_drivers import test_ovn_ipsec as upstream_ovn

from vpnd.neutron_driver import driver as vpnd_driver
from vpnd.neutron_driver.driver import VpndRouter
from vpnd.neutron_driver.l3 import VpndIPsecDriver
from vpnd.neutron_driver.ovn import VpndOvnDriver

ROUTER = upstream.FAKE_ROUTER_ID
SID = upstream.FAKE_VPNSERVICE_ID
C1 = upstream.FAKE_IPSEC_SITE_CONNECTION1_ID
C2 = upstream.FAKE_IPSEC_SITE_CONNECTION2_ID
SID2 = uuidutils.generate_uuid()
C3 = uuidutils.generate_uuid()
PENDING = constants.PENDING_CREATE
ACTIVE, DOWN = constants.ACTIVE, constants.DOWN


def rule(local, peer):
    """A NAT exemption rule as the stock driver adds it (trailing space)."""
    return ('-s %s -d %s -m policy --dir out --pol ipsec -j ACCEPT ' % (local, peer))


# FAKE_VPN_SERVICE's rules: 10.0.0.0/24 -> 20/30, 11.0.0.0/24 -> 40/50.
RULES_1 = [rule('10.0.0.0/24', '20.0.0.0/24'), rule('10.0.0.0/24', '30.0.0.0/24'),
           rule('11.0.0.0/24', '40.0.0.0/24'), rule('11.0.0.0/24', '50.0.0.0/24')]
RULES_2 = [rule('12.0.0.0/24', '90.0.0.0/24'), rule('12.0.0.0/24', '91.0.0.0/24')]


def second_service():
    """Another vpnservice on the same router, with one connection of its own."""
    svc = copy.deepcopy(upstream.FAKE_VPN_SERVICE)
    conn = copy.deepcopy(svc['ipsec_site_connections'][0])
    conn.update(id=C3, peer_address='60.0.0.9', peer_id='60.0.0.9',
                local_cidrs=['12.0.0.0/24'], peer_cidrs=['90.0.0.0/24', '91.0.0.0/24'])
    svc.update(id=SID2, name='second', ipsec_site_connections=[conn])
    return svc


def reported(status=ACTIVE, flag=True, conns=(), sid=SID):
    """One update_status entry; conns: (id, status, flag) triples."""
    return {'id': sid, 'status': status, 'updated_pending_status': flag,
            'ipsec_site_connections': {cid: {'status': s, 'updated_pending_status': f}
                                       for cid, s, f in conns}}


class VpndDriverCase:
    """Mixed in before an upstream test class: a vpnd config per test, the
    driver stopped at the end, and helpers on vpnd's files."""

    def vpnd(self, driver_class):
        """The `driver` the upstream setUp calls as driver(agent, host)."""
        def make(agent, host):
            root = tempfile.mkdtemp(prefix='vpnd-udd-')
            self.addCleanup(shutil.rmtree, root, True)
            self.state_dir, self.run_dir = f'{root}/state', f'{root}/run'
            for d in (self.state_dir, self.run_dir, f'{root}/data'):
                os.mkdir(d, 0o700)
            config = f'{root}/vpnd.yaml'
            with open(config, 'w') as f:
                f.write(f'state_dir: {self.state_dir}\nrun_dir: {self.run_dir}\n'
                        f'data_dir: {root}/data\n')
            agent.conf.register_opts(vpnd_driver.OPTS, group='vpnd')
            # Undone by neutron's BaseTestCase (CONF.reset), after the stop below.
            agent.conf.set_override('config_file', config, group='vpnd')
            driver = driver_class(agent, host)
            self.addCleanup(self._stop, driver)
            return driver
        # The upstream setUp sets this on the process class for good.
        self.addCleanup(lambda: VpndRouter.__dict__.get('_get_strongswan_piddir')
                        and delattr(VpndRouter, '_get_strongswan_piddir'))
        return make

    def _stop(self, driver):
        watch = driver.status_watch
        driver.stop()
        self.assertFalse(watch.is_alive(), 'the status watch thread outlived stop()')

    # --- files ---------------------------------------------------------------

    def state_file(self, sid=SID):
        return os.path.join(self.state_dir, f'neutron-{sid}.json')

    def state(self, sid=SID):
        with open(self.state_file(sid)) as f:
            return json.load(f)

    def names(self):
        return sorted(os.listdir(self.state_dir))

    def write_status(self, *entries):
        """vpnd's status.json, replaced by rename as vpnd does."""
        path = os.path.join(self.run_dir, 'status.json')
        with open(path + '.tmp', 'w') as f:
            json.dump({'updated': '2026-01-01T00:00:00Z', 'services': list(entries)}, f)
        os.replace(path + '.tmp', path)

    @staticmethod
    def entry(conns, status=None, sid=SID, **extra):
        """A status.json service entry; conns: {id: status or (status, reason)}."""
        out = {}
        for cid, s in conns.items():
            s, reason = s if isinstance(s, tuple) else (s, None)
            out[cid] = {'status': s, **({'reason': reason} if reason else {})}
        if status is None:
            status = ACTIVE if all(v['status'] == ACTIVE for v in out.values()) else DOWN
        return {'id': sid, 'status': status, **extra, 'ipsec_site_connections': out}

    def sync(self, *services, routers=None):
        """The agent's sync with `services` as this host's payload."""
        self.driver.agent_rpc.get_vpn_services_on_host.return_value = \
            [copy.deepcopy(s) for s in services]
        self.driver.sync(self.context, [self.router_info] if routers is None else routers)

    def updates(self):
        """Every update_status report sent, in order."""
        return [c.args[1] for c in self.driver.agent_rpc.update_status.call_args_list]

    def report(self):
        self.driver.report_status(self.context)


class VpndStatusOverrides(VpndDriverCase):
    """The stock status tests, as vpnd's status.json says them."""

    def active_then(self, service):
        """Sync `service`, report both connections ACTIVE (clearing PENDING),
        and come back with the payload as the server then sends it."""
        self.sync(service)
        self.write_status(self.entry({C1: ACTIVE, C2: ACTIVE}))
        self.report()
        self.assertEqual([[reported(ACTIVE, True, [(C1, ACTIVE, True), (C2, ACTIVE, True)])]],
                         self.updates())
        self.driver.agent_rpc.update_status.reset_mock()
        now = copy.deepcopy(service)
        now['status'] = ACTIVE
        for conn in now['ipsec_site_connections']:
            conn['status'] = ACTIVE
        return now

    def test_status_updated_on_connection_admin_down(self):
        """Upstream drives update_downed_connections, the stock 60 s report
        loop's cache, which vpnd's report replaces (it is never called)."""
        now = self.active_then(self.vpnservice)
        now['ipsec_site_connections'][1]['admin_state_up'] = False
        self.sync(now)
        self.write_status(self.entry({C1: ACTIVE, C2: (DOWN, 'admin-down')}))
        self.report()
        self.assertEqual([[reported(ACTIVE, False, [(C2, DOWN, False)])]], self.updates())
        # The file carries the admin state for vpnd to act on.
        self.assertFalse(self.state()['ipsec_site_connections'][1]['admin_state_up'])

    def test_status_updated_on_service_admin_down(self):
        """Upstream drives update_downed_connections, the stock 60 s report
        loop's cache, which vpnd's report replaces (it is never called)."""
        now = self.active_then(self.vpnservice)
        now['admin_state_up'] = False
        self.sync(now)
        self.write_status(self.entry({C1: (DOWN, 'admin-down'), C2: (DOWN, 'admin-down')},
                                     status=DOWN, reason='admin-down'))
        self.report()
        self.assertEqual([[reported(DOWN, False, [(C1, DOWN, False), (C2, DOWN, False)])]],
                         self.updates())


class VpndStrongswanStatusOverrides(VpndStatusOverrides):
    """IPsecStrongswanDeviceDriverLegacy's four, which feed `ipsec status`
    text to the process's _execute."""

    def test_status_handling_for_downed_connection(self):
        """Upstream parses charon's `ipsec status` text; vpnd's driver reads
        status.json: one connection DOWN, the service still ACTIVE."""
        self.sync(self.vpnservice)
        self.write_status(self.entry({C1: ACTIVE, C2: (DOWN, 'no SA established')}))
        self.report()
        self.assertEqual([[reported(ACTIVE, True, [(C1, ACTIVE, True), (C2, DOWN, True)])]],
                         self.updates())
        self._execute.assert_not_called()

    def test_status_handling_for_active_connection(self):
        """Upstream parses charon's `ipsec status` text; vpnd's driver reads
        status.json: both ACTIVE, PENDING_CREATE cleared with the flag."""
        self.sync(self.vpnservice)
        self.write_status(self.entry({C1: ACTIVE, C2: ACTIVE}))
        self.report()
        self.assertEqual([[reported(ACTIVE, True, [(C1, ACTIVE, True), (C2, ACTIVE, True)])]],
                         self.updates())
        # Only what changed is sent: the same status.json again says nothing.
        self.report()
        self.assertEqual(1, self.driver.agent_rpc.update_status.call_count)
        self._execute.assert_not_called()

    def test_status_handling_for_deleted_connection(self):
        """Upstream feeds a stopped charon's output; with vpnd a connection
        deleted from the payload is reported DOWN once, flagged."""
        now = self.active_then(self.vpnservice)
        del now['ipsec_site_connections'][1]
        self.sync(now)
        self.assertEqual([C1], [c['id'] for c in self.state()['ipsec_site_connections']])
        # vpnd has not re-read the file yet: its status.json still lists C2.
        self.report()
        self.assertEqual([[reported(ACTIVE, False, [(C2, DOWN, True)])]], self.updates())
        self.write_status(self.entry({C1: ACTIVE}))
        self.report()
        self.assertEqual(1, self.driver.agent_rpc.update_status.call_count)

    def test_parse_connection_status(self):
        """Upstream parses `ipsec status`; vpnd's driver reads status.json:
        none, half-written or "not applied yet" reports nothing (PENDING_CREATE
        must not turn DOWN before vpnd tried), a real status does."""
        self.sync(self.vpnservice)
        self.report()  # no status.json: vpnd not running yet
        with open(os.path.join(self.run_dir, 'status.json'), 'w') as f:
            f.write('{"services": [')  # never seen from vpnd (rename), but no crash
        self.report()
        self.write_status(self.entry({C1: (DOWN, 'not applied yet'),
                                      C2: (DOWN, 'not applied yet')}))
        self.report()
        self.assertEqual([], self.updates())
        self.write_status(self.entry({C1: (DOWN, 'not applied yet'), C2: ACTIVE}))
        self.report()
        self.assertEqual([[reported(ACTIVE, True, [(C2, ACTIVE, True)])]], self.updates())
        self._execute.assert_not_called()


# --- the upstream classes, on vpnd's drivers ----------------------------------


class TestVpndLegacy(VpndStrongswanStatusOverrides, upstream.IPsecStrongswanDeviceDriverLegacy):
    def setUp(self):
        super().setUp(driver=self.vpnd(VpndIPsecDriver), ipsec_process=VpndRouter)

    # --- vpnd's own ---------------------------------------------------------------

    def nat_rules_in_force(self):
        """The vpnaas rules added since the router's last clear."""
        nat = self.router_info.iptables_manager.ipv4['nat']
        out = []
        for name, args, kwargs in nat.mock_calls:
            if name == 'clear_rules_by_tag':
                self.assertEqual(('vpnaas',), args)
                out = []
            elif name == 'add_rule':
                self.assertEqual(('POSTROUTING',), args[:1])
                self.assertEqual({'top': True, 'tag': 'vpnaas'}, kwargs)
                out.append(args[1])
        return sorted(out)

    def test_two_services_on_one_router_keep_both_files_and_nat_rules(self):
        """The stock driver keys one service by router: a second replaced the
        first, process and NAT rules. vpnd's keeps both, each rule once."""
        svc2 = second_service()
        self.sync(self.vpnservice, svc2)
        self.assertEqual(sorted([f'neutron-{SID}.json', f'neutron-{SID2}.json']), self.names())
        self.assertEqual([C1, C2], [c['id'] for c in self.state(SID)['ipsec_site_connections']])
        self.assertEqual([C3], [c['id'] for c in self.state(SID2)['ipsec_site_connections']])
        self.assertEqual(sorted(RULES_1 + RULES_2), self.nat_rules_in_force())
        # The L3 agent's create_router (after a namespace re-creation) passes
        # the process's one vpnservice: the rules are still the router's.
        self.driver.create_router(self.router_info)
        self.assertEqual(sorted(RULES_1 + RULES_2), self.nat_rules_in_force())
        # An update of the second service (RPC, as the server casts it).
        svc2['ipsec_site_connections'][0]['peer_cidrs'] = ['92.0.0.0/24']
        self.driver.agent_rpc.get_vpn_services_on_host.return_value = [
            copy.deepcopy(self.vpnservice), copy.deepcopy(svc2)]
        self.driver.vpnservice_updated(self.context, router={'id': ROUTER})
        self.assertEqual(sorted(RULES_1 + [rule('12.0.0.0/24', '92.0.0.0/24')]),
                         self.nat_rules_in_force())
        self.assertEqual(['92.0.0.0/24'],
                         self.state(SID2)['ipsec_site_connections'][0]['peer_cidrs'])
        self.assertEqual(2, len(self.state(SID)['ipsec_site_connections']))
        # And both are reported.
        self.write_status(self.entry({C1: ACTIVE, C2: ACTIVE}),
                          self.entry({C3: ACTIVE}, sid=SID2))
        self.report()
        self.assertEqual({SID, SID2}, {r['id'] for r in self.updates()[-1]})

    def test_a_sync_with_the_same_payload_writes_nothing(self):
        """A full sync runs on every router update: unchanged files are not
        rewritten (vpnd would re-read them)."""
        self.sync(self.vpnservice, second_service())
        old = 1_000_000_000 * 10**9
        before = {}
        for sid in (SID, SID2):
            os.utime(self.state_file(sid), ns=(old, old))
            before[sid] = os.stat(self.state_file(sid))
        self.sync(self.vpnservice, second_service())
        self.driver.vpnservice_updated(self.context, router={'id': ROUTER})
        for sid in (SID, SID2):
            after = os.stat(self.state_file(sid))
            self.assertEqual((before[sid].st_ino, old), (after.st_ino, after.st_mtime_ns), sid)
        self.assertEqual(0o600, before[SID].st_mode & 0o777)
        # A change is written, and only to its own file.
        changed = copy.deepcopy(self.vpnservice)
        changed['ipsec_site_connections'][0]['mtu'] = 1400
        self.sync(changed, second_service())
        self.assertNotEqual(old, os.stat(self.state_file(SID)).st_mtime_ns)
        self.assertEqual(old, os.stat(self.state_file(SID2)).st_mtime_ns)

    def test_a_service_gone_from_the_payload_loses_its_file_not_an_operators(self):
        """The payload is the host's whole: a file of ours it no longer names
        goes; files the driver did not name (an operator's) stay."""
        self.sync(self.vpnservice, second_service())
        theirs = {'site-a.json': b'{"id": "operator"}\n',
                  'neutron-not-a-uuid.json': b'{}\n'}
        for name, data in theirs.items():
            with open(os.path.join(self.state_dir, name), 'wb') as f:
                f.write(data)
        self.sync(self.vpnservice)
        self.assertEqual(sorted([f'neutron-{SID}.json', *theirs]), self.names())
        for name, data in theirs.items():
            with open(os.path.join(self.state_dir, name), 'rb') as f:
                self.assertEqual(data, f.read())
        # The router's last service gone: the process and its file go.
        self.sync()
        self.assertNotIn(ROUTER, self.driver.processes)
        self.assertEqual(sorted(theirs), self.names())

    def test_a_router_moved_off_this_host_loses_its_files_at_once_and_is_not_reported(self):
        """The L3 agent's destroy_router (the router rescheduled elsewhere):
        the files of its services go without waiting for a sync, and this
        agent says nothing more of them, not even DOWN: the new host reports."""
        self.sync(self.vpnservice, second_service())
        self.write_status(self.entry({C1: ACTIVE, C2: ACTIVE}),
                          self.entry({C3: ACTIVE}, sid=SID2))
        self.report()
        self.assertEqual(1, self.driver.agent_rpc.update_status.call_count)
        self.driver.destroy_router(ROUTER)
        self.assertEqual([], self.names())
        self.assertNotIn(ROUTER, self.driver.processes)
        self.report()  # vpnd has not re-read the dir yet: status.json still has them
        self.write_status()
        self.report()
        self.assertEqual(1, self.driver.agent_rpc.update_status.call_count)

    def test_a_sync_that_moves_a_service_to_another_router_keeps_its_file(self):
        """Upstream destroys a synced router with no services after the
        new router's processes are ensured: the moved service's file stays,
        written with the new router's namespace."""
        other = upstream.FAKE_ROUTER_ID + 'x'
        self.sync(self.vpnservice)
        moved = copy.deepcopy(self.vpnservice)
        moved['router_id'] = other
        info = copy.copy(self.router_info)
        info.router_id, info.ns_name = other, 'qrouter-' + other
        self.driver.routers[other] = info
        self.sync(moved, routers=[{'id': ROUTER}, {'id': other}])
        self.assertNotIn(ROUTER, self.driver.processes)
        self.assertEqual('qrouter-' + other, self.state()['namespace'])

    def test_a_file_left_from_before_a_restart_is_removed(self):
        """A service deleted while the agent was down: its file is found at
        the first sync and removed."""
        stale = uuidutils.generate_uuid()
        with open(self.state_file(stale), 'w') as f:
            f.write('{}\n')
        self.sync(self.vpnservice)
        self.assertEqual([f'neutron-{SID}.json'], self.names())

    def test_an_ha_backup_router_writes_files_but_reports_nothing(self):
        """vpnd loads a backup's files in standby (it follows the VIP); the
        primary's agent reports, as with the stock driver."""
        self.router_info.router['ha'] = True
        self.router_info.ha_state = 'backup'
        self.sync(self.vpnservice)
        self.assertEqual('qrouter-' + ROUTER, self.state()['namespace'])
        self.write_status(self.entry({C1: ACTIVE, C2: ACTIVE}))
        self.report()
        self.assertEqual([], self.updates())
        # The L3 agent's HA hook (upstream's own code) makes it primary.
        agent = types.SimpleNamespace(device_drivers=[self.driver])
        vpn_agent.VPNAgent.ha_state_change(agent, self.context,
                                           {'router_id': ROUTER, 'state': 'primary'})
        self.report()
        self.assertEqual([[reported(ACTIVE, True, [(C1, ACTIVE, True), (C2, ACTIVE, True)])]],
                         self.updates())
        # Backup again: the file stays, reports stop.
        vpn_agent.VPNAgent.ha_state_change(agent, self.context,
                                           {'router_id': ROUTER, 'state': 'backup'})
        self.assertEqual([f'neutron-{SID}.json'], self.names())
        self.write_status(self.entry({C1: DOWN, C2: DOWN}))
        self.report()
        self.assertEqual(1, self.driver.agent_rpc.update_status.call_count)

    def test_a_service_before_its_router_is_written_once_the_router_is_known(self):
        """Without a RouterInfo the namespace is unknown (vpnd would guess
        qrouter-): no file until the agent's create_router."""
        del self.driver.routers[ROUTER]
        self.sync(self.vpnservice, routers=[])
        self.assertEqual([], self.names())
        self.driver.create_router(self.router_info)
        self.assertEqual('qrouter-' + ROUTER, self.state()['namespace'])
        self.assertEqual(sorted(RULES_1), self.nat_rules_in_force())

    def test_the_file_is_the_payload_as_it_came_plus_the_namespace(self):
        """vpnd reads Neutron's payload itself: nothing mapped or rewritten
        (the stock process rewrites psk, ike_version, ... in place)."""
        self.sync(self.vpnservice)
        self.assertEqual({**upstream.FAKE_VPN_SERVICE, 'namespace': 'qrouter-' + ROUTER},
                         self.state())

    def test_status_json_changes_are_reported_without_a_call(self):
        """The status watch follows status.json (inotify), not the 60 s loop."""
        self.sync(self.vpnservice)
        self.write_status(self.entry({C1: ACTIVE, C2: ACTIVE}))
        deadline = time.monotonic() + 5
        while not self.updates() and time.monotonic() < deadline:
            time.sleep(0.01)
        self.assertEqual([[reported(ACTIVE, True, [(C1, ACTIVE, True), (C2, ACTIVE, True)])]],
                         self.updates())
        # Stopped, it says nothing more.
        self.driver.stop()
        self.write_status(self.entry({C1: DOWN, C2: DOWN}))
        time.sleep(0.1)
        self.assertEqual(1, self.driver.agent_rpc.update_status.call_count)

    def test_the_status_watch_thread_keeps_its_name(self):
        """A thread dump (py-spy, faulthandler) or a log's threadName should say
        what the thread is."""
        self.assertEqual('vpnd-neutron-status', self.driver.status_watch.name)

    def test_a_stopped_driver_leaves_no_thread_and_no_fd(self):
        """An agent may make and stop drivers: each one's thread, inotify fd
        and stop pipe go with it."""
        def fds():
            return len(os.listdir('/proc/self/fd'))
        before = fds()
        for _ in range(3):
            other = VpndIPsecDriver(self.agent, 'another-host')
            watch = other.status_watch
            other.stop()
            other.stop()  # twice is harmless (a cleanup after an explicit stop)
            self.assertFalse(watch.is_alive())
        self.assertEqual(before, fds())


class TestVpndDVR(VpndDriverCase, upstream.IPsecStrongswanDeviceDriverDVR):
    def setUp(self):
        super().setUp(driver=self.vpnd(VpndIPsecDriver), ipsec_process=VpndRouter)
        self.router_info = self.driver.routers[ROUTER]

    def test_a_dvr_edge_routers_file_names_its_snat_namespace(self):
        """On a DVR edge the VPN runs in snat-<id>; the payload names no
        namespace and vpnd's default (qrouter-) would be wrong."""
        self.sync(self.vpnservice)
        self.assertEqual('snat-' + ROUTER, self.state()['namespace'])
        added = sorted(c.args[1] for c in self.iptables.add_rule.call_args_list)
        self.assertEqual(sorted(RULES_1), added)  # on the snat iptables manager


class TestVpndOvn(VpndStatusOverrides, upstream_ovn.TestOvnStrongSwanDriver):
    def setUp(self):
        super().setUp(driver=self.vpnd(VpndOvnDriver), ipsec_process=VpndRouter)

    def as_the_ovn_agent(self):
        """The OVN agent's sync passes router ids, never a RouterInfo (the
        upstream setUp leaves an L3 one in driver.routers, with which the
        stock destroy_process would call OVN's get_router_based_iptables_manager
        = None); and its namespace names are DeviceManager's own."""
        self.driver.routers.clear()
        real = ovn_ipsec.DeviceManager(self.conf, upstream.FAKE_HOST,
                                       self.driver.agent_rpc, self.context)
        self.driver.devmgr.get_namespace_name.side_effect = real.get_namespace_name

    def test_an_ovn_routers_file_names_its_qvpn_namespace(self):
        """neutron-ovn-vpn-agent makes qvpn-<router id> for the router's VPN."""
        self.as_the_ovn_agent()
        self.sync(self.vpnservice, routers=[{'id': ROUTER}])
        self.assertEqual('qvpn-' + ROUTER, self.state()['namespace'])
        self.driver.nsmgr.create.assert_called_once_with('qvpn-' + ROUTER)

    def test_two_services_on_one_router_keep_both_files_and_routes(self):
        """The stock OVN driver routed one service's local subnets (the last
        one's); the router's routes are every service's."""
        self.as_the_ovn_agent()
        self.sync(self.vpnservice, second_service(), routers=[{'id': ROUTER}])
        self.assertEqual(sorted([f'neutron-{SID}.json', f'neutron-{SID2}.json']), self.names())
        added = set()
        for c in self.driver.devmgr.add_routes.call_args_list:
            self.assertEqual(('qvpn-' + ROUTER,), c.args[:1])
            added |= set(c.args[1])
        self.assertEqual({'10.0.0.0/24', '11.0.0.0/24', '12.0.0.0/24'}, added)
        self.driver.devmgr.delete_routes.assert_called_once_with(
            'qvpn-' + ROUTER, set(), '192.168.1.1')

    def test_removed_from_agent_stops_its_reports(self):
        """vpnservice_removed_from_agent (OVN's RPC): the process goes, and
        its services are not reported from here."""
        self.as_the_ovn_agent()
        self.sync(self.vpnservice, routers=[{'id': ROUTER}])
        self.driver.vpnservice_removed_from_agent(self.context, ROUTER)
        self.assertNotIn(ROUTER, self.driver.processes)
        self.write_status(self.entry({C1: ACTIVE, C2: ACTIVE}))
        self.report()
        self.assertEqual([], self.updates())
