"""What both device drivers share: services to state files, status back.

Subclasses of neutron-vpnaas's IPsecDriver keep its RPC endpoint
(`vpnservice_updated`), its sync under the agent's lock, its router
bookkeeping for the HA hooks (`processes`, `routers`) and its NAT
exemption rules. What changes:
- the per-router process is a `VpndRouter`, which writes files instead
  of running a strongSwan;
- a router's services are kept together: the stock driver keys one
  service by router, so a second service on the same router replaced
  the first, and so did its NAT rules;
- status comes from vpnd's status.json as it changes (status_watch), not
  from `ipsec status` every 60 s; the 60 s loop stays as a backstop.
"""
from __future__ import annotations

import copy
import threading

from oslo_config import cfg
from oslo_log import log as logging

from vpnd.base import config as vpnd_config
from vpnd.observe import status as vpnd_status

from vpnd.neutron_driver import reports, state_files
from vpnd.neutron_driver.status_watch import StatusWatch

LOG = logging.getLogger(__name__)

OPTS = [
    cfg.StrOpt("config_file", default="/etc/vpnd/vpnd.yaml",
               help="vpnd's configuration: its state_dir is where the driver writes one "
                    "file a VPN service, its run_dir holds the status.json it reports"),
    cfg.FloatOpt("status_backstop", default=30.0, min=1.0,
                 help="Seconds between status reads when status.json did not change "
                      "(it is followed with inotify; this only catches a missed event)"),
]


class VpndRouter:
    """Where the stock drivers' per-router strongSwan process stood: the
    router's VPN services, written as vpnd state files. `enable()` and
    `disable()` are the HA hooks: a backup keeps its files (vpnd loads
    them in standby and follows the VIP) and only stops reporting."""

    def __init__(self, driver, router_id: str, vpnservice: dict | None, namespace: str | None):
        self.driver = driver
        self.id = router_id
        self.namespace = namespace
        self.vpnservice: dict | None = None
        self.enabled = False
        if vpnservice:
            self.update_vpnservice(vpnservice)

    def update_vpnservice(self, vpnservice: dict) -> None:
        self.driver.router_services.setdefault(self.id, {})[vpnservice["id"]] = vpnservice
        self.vpnservice = vpnservice

    def enable(self) -> None:
        self.enabled = True
        self.update()

    def disable(self) -> None:
        self.enabled = False

    def update(self) -> None:
        self.driver.write_router(self)

    def _execute(self, cmd, check_exit_code=True, extra_ok_codes=None):
        # neutron-vpnaas's unit tests patch this on the process class; vpnd's
        # process runs no command.
        raise NotImplementedError("the vpnd driver runs no command")


class VpndDriverMixin:
    """Before neutron-vpnaas's IPsecDriver (or OvnIPsecDriver) in the bases."""

    def __init__(self, vpn_service, host):
        conf = vpn_service.conf
        conf.register_opts(OPTS, group="vpnd")  # the agent's conf: two agents, two confs
        self.vpnd_config = vpnd_config.load(conf.vpnd.config_file)
        self.files = state_files.StateFiles(self.vpnd_config.state_dir)
        self._report_lock = threading.Lock()
        self._sent: dict[str, reports.Sent] = {}
        self._known: set[str] = set()  # every service of this host's last payload
        # router id -> {service id: payload}: on the driver, not the process
        self.router_services: dict[str, dict[str, dict]] = {}
        self.status_watch = StatusWatch(self.vpnd_config.status_file, self._report_now,
                                        every=conf.vpnd.status_backstop, log=LOG)
        super().__init__(vpn_service, host)  # consumes RPC and starts the 60 s loop
        self.status_watch.start()

    # --- processes ---------------------------------------------------------------

    def create_process(self, process_id, vpnservice, namespace):
        return VpndRouter(self, process_id, vpnservice, namespace)

    def _sync_vpn_processes(self, vpnservices, sync_router_ids):
        by_router: dict[str, list[dict]] = {}
        for vpnservice in vpnservices:
            by_router.setdefault(vpnservice["router_id"], []).append(vpnservice)
        self._known = {vs["id"] for vs in vpnservices}
        for router_id, services in by_router.items():
            fresh = router_id not in self.processes or router_id in sync_router_ids
            # As the stock driver: only a new or synced router's process is
            # ensured; any router's files are brought up to date below.
            process = (self.ensure_process(router_id, vpnservice=services[-1]) if fresh
                       else self.processes[router_id])
            # A service that left the router: its file goes below, unless
            # it moved to another router of this host (rewritten there).
            self.router_services[router_id] = {s["id"]: s for s in services}
            if fresh:
                self.prepare_router(router_id, self.merged(router_id))
                process.enabled = not self._backup(router_id)
            # Every sync writes every service whose bytes moved (and only
            # those): unchanged files cost a read, and vpnd no write.
            process.update()
        # A service gone while the agent was down: the host's payload is
        # whole, so a file of ours it does not name is stale.
        for stale in self.files.present() - self._known:
            self.files.remove(stale)

    def prepare_router(self, router_id: str, merged: dict) -> None:
        """What the agent sets up for a router's VPN (NAT rules, or OVN's
        namespace and routes), from all its services at once."""
        raise NotImplementedError

    def merged(self, router_id: str, vpnservice: dict | None = None) -> dict:
        """One service dict with every connection of the router's services
        (NAT rules and routes are the router's, not one service's)."""
        services = dict(self.router_services.get(router_id, {}))
        if vpnservice is not None:
            services[vpnservice["id"]] = vpnservice
        first = vpnservice or next(iter(services.values()), {"router_id": router_id})
        return {**first, "ipsec_site_connections":
                [c for s in services.values() for c in s.get("ipsec_site_connections") or ()]}

    def write_router(self, process: VpndRouter) -> None:
        namespace = self.get_namespace(process.id)
        if namespace is None:
            # The router is not known yet: vpnd would guess qrouter-, wrong
            # for DVR. create_router() writes them once it is.
            return
        process.namespace = namespace
        for payload in self.router_services.get(process.id, {}).values():
            if self.files.write(payload, namespace):
                LOG.info("vpnd state file written for vpnservice %s (router %s, %s)",
                         payload["id"], process.id, namespace)

    def destroy_process(self, process_id):
        """The router left this host (the L3 agent's destroy_router, or a
        sync that no longer names it). Its files go now: waiting for the
        next sync would leave vpnd holding tunnels in a namespace being
        deleted. A service a sync just moved to another router of this
        host keeps its file (rewritten there)."""
        services = set(self.router_services.pop(process_id, {}))
        super().destroy_process(process_id)
        elsewhere = {sid for svcs in self.router_services.values() for sid in svcs}
        gone = services - elsewhere
        for sid in gone:
            self.files.remove(sid)
        with self._report_lock:
            # Not this host's to report any more, not even as DOWN: the
            # agent that hosts the router now reports it (the stock driver
            # falls silent too).
            self._known -= gone
            for sid in gone:
                self._sent.pop(sid, None)

    # --- status ------------------------------------------------------------------

    def _report_now(self) -> None:
        self.report_status(self.context)

    def _reported(self) -> dict[str, dict]:
        """The services this agent reports: not a backup HA router's (the
        primary's agent reports them, as in the stock driver)."""
        out = {}
        for router_id, process in list(self.processes.items()):
            if process.enabled and not self._backup(router_id):
                out.update(self.router_services.get(router_id, {}))
        return out

    def _backup(self, router_id: str) -> bool:
        """An HA router this node holds as backup (the stock driver's test)."""
        ri = self.routers.get(router_id)
        return ri is not None and bool(ri.router.get("ha")) and ri.ha_state == "backup"

    def report_status(self, context):
        with self._report_lock:
            try:
                doc = vpnd_status.read(self.vpnd_config.status_file)
            except (OSError, ValueError):
                doc = None  # vpnd not running yet, or mid-start: nothing known to tell
            sent = copy.deepcopy(self._sent)
            out, failures = reports.reports(doc, self._reported(), set(self._known), sent)
            for f in failures:
                LOG.warning("vpnd reports ipsec_site_connection %s of vpnservice %s ERROR: "
                            "%s%s", f.connection, f.service, f.reason,
                            "".join(f"; {e}" for e in f.errors))
            if out:
                self.agent_rpc.update_status(context, out)  # a blocking call
                LOG.debug("vpnd status reported: %s", out)
            self._sent = sent  # only once neutron-server has it

    def stop(self) -> None:
        """Stop reporting and consuming: a driver replaced says nothing more."""
        self.status_watch.stop()
        try:
            self.process_status_cache_check.stop()
        except Exception:  # noqa: BLE001 - a loop already stopped
            pass
        try:
            self.conn.close()
        except Exception:  # noqa: BLE001
            pass
