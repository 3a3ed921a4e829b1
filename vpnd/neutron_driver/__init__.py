"""vpnd under Neutron: device drivers for neutron-vpnaas's agents.

An optional part (`pip install vpnd[neutron]`): it runs inside the L3
agent (`l3.VpndIPsecDriver`) or the OVN VPN agent (`ovn.VpndOvnDriver`),
in place of the stock drivers' per-router strongSwan process. The agent
keeps what it does well (RPC, router namespaces, NAT exemption rules, HA
hooks); the driver writes each VPN service's payload into vpnd's state
dir and reports vpnd's status.json back to neutron-server as it changes.

It may import neutron, neutron_lib, neutron_vpnaas, oslo.* and vpnd's
own pure and file modules. Nothing else in vpnd imports it (an import
contract holds that), so vpnd itself never needs Neutron.
"""
