"""What a plan is made of: steps, one per connection, each with its reason,
its actions in order, the record line it leaves and what it disrupts.

The reasons are an enum, not free text: the apply path and the loop steer
by them (an upkeep step changes no record, a change is journaled first),
and a misspelt member fails at import where a misspelt string would
quietly steer wrong. Each is a `StrEnum`, so it prints, compares and
goes to JSON as its text: `vpnd plan --json` and conf/plan.schema.json
name them as before.
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from vpnd.base.conns import AppliedConn
from vpnd.base.live import LiveState
from vpnd.plan.actions import Action


class Reason(StrEnum):
    """Why a step is taken (conf/plan.schema.json lists the same)."""

    # new, changed, removed: the state files say so.
    NEW = "new"
    CHANGED = "changed"
    # The rest of a change a killed vpnd had begun (conns.Intent).
    RESUMED = "resumed"
    # charon lost it (it restarted, or someone unloaded it).
    RELOAD = "reload"
    # Loaded, but not on record: taken on.
    ADOPT = "adopt"
    REMOVED = "removed"
    # The same connection, now from another file: only the record moves.
    MOVED = "moved"
    # Upkeep (upkeep.py, mtu.py): keeping what is loaded in shape.
    DUPLICATE = "duplicate"
    NO_SA = "no SA"
    MTU = "mtu"
    # Its local address is not on this node (standby.py): its SAs end.
    STANDBY = "standby"


# Steps that keep what is loaded in shape: they change no record.
UPKEEP = frozenset({Reason.DUPLICATE, Reason.NO_SA, Reason.MTU, Reason.STANDBY})


@dataclass(frozen=True)
class Disruption:
    """What a step will end, as the plan predicts it from the live state."""

    ike_sas: tuple[str, ...] = ()  # unique ids
    child_sas: tuple[str, ...] = ()
    interrupts_traffic: bool = False  # an installed CHILD_SA of it ends
    why: str = ""

    def to_dict(self) -> dict:
        return {"ike_sas": list(self.ike_sas), "child_sas": list(self.child_sas),
                "interrupts_traffic": self.interrupts_traffic, "why": self.why}


NO_DISRUPTION = Disruption()


def disruption(live: LiveState, ike_ids, why: str, child_ids=(), name=None) -> Disruption:
    """Ending these IKE_SAs (with their CHILD_SAs) and these CHILD_SAs;
    `name`: all of them are that connection's (only its SAs are looked at)."""
    ike_ids = set(ike_ids)
    child_ids = set(child_ids)
    sas = live.sas if name is None else live.by_name.get(name, ())
    ending = [c for sa in sas for c in sa.children
              if sa.uniqueid in ike_ids or c.uniqueid in child_ids]
    return Disruption(tuple(sorted(ike_ids, key=_num)),
                      tuple(sorted({c.uniqueid for c in ending}, key=_num)),
                      any(c.state == "INSTALLED" for c in ending), why)


def _num(uniqueid: str):
    return (len(uniqueid), uniqueid)


@dataclass(frozen=True)
class Step:
    """The actions for one connection; the record changes only if all succeed."""

    namespace: str
    name: str
    service_id: str
    reason: Reason
    actions: tuple[Action, ...]
    record: AppliedConn | None  # the record line afterwards; None: forget it
    disrupts: Disruption = NO_DISRUPTION

    @property
    def upkeep(self) -> bool:
        """A step that keeps what is loaded in shape; it changes no record."""
        return self.reason in UPKEEP

    def to_dict(self) -> dict:
        """The shape conf/plan.schema.json documents."""
        return {"namespace": self.namespace, "connection": self.name,
                "service": self.service_id, "reason": self.reason,
                "actions": [a.describe() for a in self.actions],
                "disrupts": self.disrupts.to_dict()}


def ike_ids(live, name: str) -> tuple[str, ...]:
    """The unique ids of a connection's IKE_SAs, as a step that ends them
    names them (and its Disruption)."""
    return tuple(sorted(sa.uniqueid for sa in live.by_name.get(name, ())))
