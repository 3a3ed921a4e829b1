"""Deciding what to do (pure): the model rendered into what charon should
hold (render), the steps from what is live to what is desired (planner),
what a step is and why it is taken (steps) and the actions it is made of
(actions), the upkeep of SAs that need no config change (upkeep), route
MTUs (mtu) and which connections wait in standby for their address
(standby).

May import: vpnd.base, vpnd.state. No I/O: every input is a value, every
output a frozen step.
"""
