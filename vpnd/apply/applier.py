"""The one apply path: typed steps in, writes to charon (and netlink) out.

Every step goes through here, whatever made it: loads, unloads and
terminations from the plan, duplicate endings and re-initiations from
upkeep, route MTUs. When a look has more than one planned step (a cold
start, a full sync, one policy shared by thousands of connections), they
go to the driver together, in plan order, and it pipelines them: charon
works one session's requests in order, so each connection still breaks
before it makes, and the batch costs charon's time, not a round trip per
request. One step alone, and upkeep, run one action at a time. A step
that changes what is loaded updates the record only when all its actions
succeeded; an upkeep step changes no record.
"""
from __future__ import annotations

import time

from vpnd.system import failpoints
from vpnd.apply import routes
from vpnd.base.errors import DriverError, DriverUnavailable
from vpnd.base.conns import Intent
from vpnd.plan.actions import SetRouteMtu, TerminateIke
from vpnd.plan.steps import Reason, Step

# Log events for upkeep steps (kept from before they were steps: journal
# queries and operators know them by these names).
_UPKEEP_EVENTS = {Reason.DUPLICATE: "duplicate SA ended", Reason.NO_SA: "initiating",
                  Reason.MTU: "route mtu set", Reason.STANDBY: "standby SAs ended"}


# A pipeline carries at most this many steps: a look over its budget stops
# between two (the rest after the keys due before it), and the answers
# still owed stay bounded.
PIPELINE_STEPS = 1000


def pipelines(step: Step) -> bool:
    """A planned step with charon's writes to make (upkeep steps end or
    start SAs one by one, route MTUs are netlink's)."""
    return bool(step.actions) and not step.upkeep


def _intent(step: Step) -> Intent | None:
    """A change that ends SAs is journaled before its first action."""
    if step.reason not in (Reason.CHANGED, Reason.RESUMED):
        return None
    ending = next((a.ending for a in step.actions if isinstance(a, TerminateIke)), ())
    return Intent(step.record.fingerprint, ending)


class Applier:
    def __init__(self, driver, record, observed, log, clock=time.monotonic):
        self.driver = driver
        self.record = record
        self.observed = observed
        self.log = log
        self.clock = clock

    def apply(self, ns: str, steps, failed: dict, deadline: float | None = None) -> list[Step]:
        """Apply `steps` in order; errors go to `failed` ((ns, name) ->
        why). Stops between steps once `deadline` (monotonic) has passed
        and returns the steps left for later."""
        batch = [s for s in steps if pipelines(s)]
        if len(batch) > 1:
            batched = {id(s) for s in batch}
            steps = [s for s in steps if id(s) not in batched]
            for start in range(0, len(batch), PIPELINE_STEPS):
                if start and deadline is not None and self.clock() >= deadline:
                    return [*batch[start:], *steps]
                self._apply_many(ns, batch[start:start + PIPELINE_STEPS], failed)
        for i, step in enumerate(steps):
            if deadline is not None and self.clock() >= deadline:
                return list(steps[i:])
            self._apply_step(step, failed)
        return []

    def _apply_many(self, ns: str, steps: list[Step], failed: dict) -> None:
        self.record.intend_many(ns, [(s.name, i) for s in steps if (i := _intent(s))])
        answered = 0
        try:
            # Each step is recorded and logged as its last answer arrives,
            # while charon works on the next ones.
            for step, error in zip(steps, self.driver.apply_many(ns, steps)):
                answered += 1
                if error:
                    self._failed(step, None, error, failed)
                else:
                    failpoints.reached(f"{step.reason}-not-recorded", step.name)
                    self._applied(step)
        except DriverUnavailable as e:
            for step in steps[answered:]:
                self._failed(step, None, f"{step.reason} not applied: {e}", failed)

    def _apply_step(self, step: Step, failed: dict) -> None:
        if (intent := _intent(step)) is not None:
            self.record.intend(step.namespace, step.name, intent)
        for action in step.actions:
            try:
                if isinstance(action, SetRouteMtu):
                    routes.set_mtu(step.namespace, action.route, action.mtu)
                else:
                    self.driver.execute(step.namespace, action)
            except (DriverError, OSError) as e:  # OSError: netlink, for a route MTU
                self._failed(step, action, str(e), failed)
                return
        failpoints.reached(f"{step.reason}-not-recorded", step.name)
        self._applied(step)

    def _failed(self, step: Step, action, error: str, failed: dict) -> None:
        fields = dict(netns=step.namespace, service=step.service_id, connection=step.name,
                      error=error)
        if action is not None:
            fields["action"] = action.describe()
        if step.reason == Reason.MTU:
            self.observed.note_mtu((step.namespace, step.name), f"not applied: {error}")
            self.log.warning("route mtu not set", **fields)
        elif step.upkeep:
            # The connection's state is what it was; its key retries.
            self.log.warning(f"{_UPKEEP_EVENTS[step.reason]} failed", **fields)
        else:
            failed[(step.namespace, step.name)] = \
                f"{action.describe()} failed: {error}" if action is not None else error
            self.log.error("apply failed", **fields)

    def _applied(self, step: Step) -> None:
        if step.upkeep:
            self.log.info(_UPKEEP_EVENTS[step.reason], netns=step.namespace,
                          connection=step.name, actions=[a.describe() for a in step.actions])
            return
        self.record.set(step.namespace, step.name, step.record)
        if step.actions:
            # Whatever failed before was about the old configuration.
            self.observed.clear_failure((step.namespace, step.name))
            # The reason as text: a console log would show the enum's repr.
            self.log.info("change applied", netns=step.namespace, service=step.service_id,
                          connection=step.name, reason=str(step.reason),
                          actions=[a.describe() for a in step.actions])
