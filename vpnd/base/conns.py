"""The connection as the stages pass it on: what is desired (DesiredConn,
made by plan.render), what vpnd applied (AppliedConn, a line of
apply.record) and a change begun (Intent, journaled by apply.record).

Values only: the planner compares them, the record stores them, the
driver sends what a DesiredConn renders to. They live here, below every
stage, because all of those stages hold them.
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class DesiredConn:
    """One desired connection, everything known of it in one place: where
    it comes from, the model, the fingerprint of what it renders to for
    charon, and that rendering: kept (`conn_message`, `secret_message`) or,
    to keep 10,000 connections small, made again when a step needs it
    (`render`: model -> strongswan_mapping.Rendered, a few microseconds)."""

    name: str
    service_id: str
    source: str
    fingerprint: str
    conn_message: dict | None
    secret_id: str
    secret_message: dict | None = field(default=None, repr=False)
    namespace: str = ""
    model: object = field(default=None, repr=False, compare=False)  # model.Connection
    children: tuple[str, ...] = ()  # CHILD_SA names
    initiates: bool = False  # bi-directional: vpnd keeps it initiated
    parts: str = ""  # fingerprints of its parts (render.parts): what changed
    render: object = field(default=None, repr=False, compare=False)

    def message(self) -> dict:
        """The load-conn message."""
        return self.conn_message if self.conn_message is not None else \
            self.render(self.model).conn

    def secret(self) -> dict:
        """The load-shared message (it holds the PSK)."""
        return self.secret_message if self.secret_message is not None else \
            self.render(self.model).secret


@dataclass(frozen=True, slots=True)
class AppliedConn:
    """One line of the record: what vpnd loaded into a charon, and from where."""

    name: str
    service_id: str
    source: str
    fingerprint: str
    secret_id: str
    # Fingerprints of the parts (PSK, IKE, CHILD_SA settings), so a plan can
    # say what changed; records from before them have none.
    parts: str = field(default="", compare=False)


@dataclass(frozen=True)
class Intent:
    """A change begun: journaled before its first action, so that a vpnd
    killed before the change's record line knows, on restart, that the
    SAs it was ending (`ending`) are the only ones to end; the new ones
    charon made since are the changed configuration's."""

    fingerprint: str
    ending: tuple[str, ...]
