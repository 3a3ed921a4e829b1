"""A bounded, self-healing VICI client to one charon.

Thin on purpose: one method per command, bytes converted to str at the
edge (vici_answers), and no VICI dictionaries leak past the driver. The
session under it (vici_session) bounds every call by a deadline, maps the
binding's exceptions to ours in one place, and reconnects after a
transport error; many requests go in one write (vici_query for reads,
vici_pipeline for writes).
"""
from __future__ import annotations

from collections.abc import Iterator

from vpnd.base.live import IkeSa, LiveState
from vpnd.base.errors import DriverError
from vpnd.drivers import vici_answers
from vpnd.drivers.vici_answers import decode
from vpnd.drivers.vici_pipeline import pipeline
from vpnd.drivers.vici_query import SameNames, query
from vpnd.drivers.vici_requests import already_done, initiate_request, terminate_request
from vpnd.drivers.vici_session import ViciSession


class ViciClient(ViciSession):
    def __init__(self, socket_path: str, timeout: float = 10.0):
        super().__init__(socket_path, timeout)
        self._names = SameNames()

    # --- reads -----------------------------------------------------------

    def version(self) -> dict:
        return decode(self.call("version", lambda s: s.version()))

    def plugins(self) -> list[str]:
        """The plugins charon loaded (from `stats`)."""
        return decode(self.call("stats", lambda s: s.stats())).get("plugins", [])

    def algorithms(self) -> dict[str, set[str]]:
        answer = decode(self.call("get-algorithms", lambda s: s.get_algorithms()))
        return {category: set(algs) for category, algs in answer.items()
                if isinstance(algs, dict)}

    def sas_of(self, names) -> tuple[IkeSa, ...]:
        """The SAs of some connections only (list-sas filtered by name),
        all asked in one write."""
        names = list(names)
        if not names:
            return ()
        answers = query(self, "list-sas", [("list-sas", {"ike": n}, "list-sa") for n in names])
        return tuple(sa for _, events in answers
                     for sa in vici_answers.ike_sas(decode(events)))

    def live_state(self) -> LiveState:
        """get-conns, get-shared and list-sas, asked in one write."""
        (conns, _), (shared, _), (_, sas) = query(self, "live state", [
            ("get-conns", None, None), ("get-shared", None, None),
            ("list-sas", None, "list-sa")], self._names)
        return vici_answers.live_state(conns, shared, sas)

    # --- writes ----------------------------------------------------------

    def pipeline(self, requests: list[tuple[str, object]]) -> Iterator[str | None]:
        """Many write requests sent ahead of their answers; one None or
        error text per request, in order (see vici_pipeline)."""
        return pipeline(self, requests)

    def reload_settings(self) -> None:
        self.call("reload-settings", lambda s: s.reload_settings(), write=True)

    def load_conn(self, message: dict) -> None:
        self.call(f"load-conn {', '.join(message)}", lambda s: s.load_conn(message),
                  write=True)

    def unload_conn(self, name: str) -> None:
        self._unless_done("unload-conn", f"unload-conn {name}",
                          lambda s: s.unload_conn({"name": name}))

    def load_shared(self, message: dict) -> None:
        # The message holds the PSK: never let it into an error text.
        self.call(f"load-shared {message.get('id')}",
                  lambda s: s.load_shared(message), write=True)

    def unload_shared(self, secret_id: str) -> None:
        self.call(f"unload-shared {secret_id}",
                  lambda s: s.unload_shared({"id": secret_id}), write=True)

    def initiate(self, name: str, child: str) -> None:
        request = initiate_request(name, child)
        self.call(f"initiate {name}", lambda s: list(s.initiate(request)), write=True)

    def terminate_ike(self, name: str) -> None:
        self._terminate(f"terminate {name}", {"ike": name})

    def terminate_ike_id(self, uniqueid: str) -> None:
        self._terminate(f"terminate ike-id {uniqueid}", {"ike-id": uniqueid})

    def terminate_child_id(self, uniqueid: str) -> None:
        self._terminate(f"terminate child-id {uniqueid}", {"child-id": uniqueid})

    def _terminate(self, what: str, request: dict) -> None:
        request = terminate_request(request)
        self._unless_done("terminate", what, lambda s: list(s.terminate(request)))

    def _unless_done(self, command: str, what: str, fn) -> None:
        """A write whose aim may already be met (ALREADY_DONE): that is
        what we wanted, not an error."""
        try:
            self.call(what, fn, write=True)
        except DriverError as e:
            if not already_done(command, str(e)):
                raise
