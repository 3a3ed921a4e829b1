"""The device driver for neutron-ovn-vpn-agent.

    [vpnagent]
    vpn_device_driver = vpnd.neutron_driver.ovn.VpndOvnDriver

The agent makes the qvpn-<router id> namespace, its gateway and transit
ports and the routes to the local subnets, for all of a router's services
at once; OVN needs no NAT rules.
"""
from __future__ import annotations

from neutron_vpnaas.services.vpn.device_drivers import ovn_ipsec

from vpnd.neutron_driver.driver import VpndDriverMixin, VpndRouter

__all__ = ["VpndOvnDriver", "VpndRouter"]


class VpndOvnDriver(VpndDriverMixin, ovn_ipsec.OvnIPsecDriver):
    def prepare_router(self, router_id: str, merged: dict) -> None:
        details = self.agent_rpc.get_vpn_transit_network_details(router_id)
        self._ensure_namespace(router_id, details)
        self._update_route(merged, details)
