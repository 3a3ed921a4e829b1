"""The device driver for neutron's L3 agent (legacy, HA and DVR routers).

    [vpnagent]
    vpn_device_driver = vpnd.neutron_driver.l3.VpndIPsecDriver

Namespaces are the agent's (qrouter-<id>, snat-<id> on a DVR edge), and
so are the NAT exemption rules, from all of a router's services.
"""
from __future__ import annotations

from neutron_vpnaas.services.vpn.device_drivers import ipsec

from vpnd.neutron_driver.driver import VpndDriverMixin, VpndRouter

__all__ = ["VpndIPsecDriver", "VpndRouter"]


class VpndIPsecDriver(VpndDriverMixin, ipsec.IPsecDriver):
    def prepare_router(self, router_id: str, merged: dict) -> None:
        # `merged` has every service's connections already: through our
        # ensure_nat_rules they would be merged again, the last service's twice.
        super().ensure_nat_rules(merged)

    def ensure_nat_rules(self, vpnservice):
        # The stock driver clears the router's 'vpnaas' rules and adds one
        # service's: a second service on the router lost its exemptions.
        super().ensure_nat_rules(self.merged(vpnservice["router_id"], vpnservice))
