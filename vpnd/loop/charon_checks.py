"""Whether a namespace's charon fits what vpnd asks of it: the plugins it
loaded, the algorithms it can negotiate, and its settings. Problems go to
observed state (a charon's once, logged when they change; a connection's
as its ERROR reason). Restarting a charon that stops answering is
charon_restarts.py's job."""
from __future__ import annotations

from vpnd.drivers.base import Driver
from vpnd.base.errors import CharonNotAnswering, DriverError, DriverUnavailable
from vpnd.loop.look_memo import LookMemo
from vpnd.observe.observed import Observed


def unreachable(e: DriverUnavailable) -> str:
    """The status reason for a charon that cannot be used right now."""
    if isinstance(e, CharonNotAnswering):
        return f"charon not answering: {e}"
    return f"charon not running: {e}"


_UNKNOWN = object()  # charon could not be asked


def _without(ns: str, ns_desired: dict, found: dict) -> dict:
    if not found:
        return ns_desired  # the same object: what a look keeps from it holds
    return {name: c for name, c in ns_desired.items() if (ns, name) not in found}


def by_policies(ns_desired: dict) -> list[tuple[object, list[str]]]:
    """The connections by their two policies, which alone say what charon
    must negotiate (charon_algorithms): a model and the names, per pair.
    Policies are shared objects (state.policy_checks), and few."""
    groups: dict[tuple[int, int], tuple[object, list[str]]] = {}
    for name, conn in ns_desired.items():
        model = conn.model
        key = (id(model.ikepolicy), id(model.ipsecpolicy))
        if key not in groups:
            groups[key] = (model, [])
        groups[key][1].append(name)
    return list(groups.values())


class CharonChecks:
    def __init__(self, driver: Driver, observed: Observed, log):
        self.driver = driver
        self.observed = observed
        self.log = log
        # A namespace's connections grouped by policies, kept while the
        # full look's desired connections are the same object.
        self._memo = LookMemo()

    def check(self, ns: str, conns=None) -> None:
        """Whether the charon that answers is what vpnd asked for (its
        plugins) and the kernel can carry its CHILD_SAs (ESP for the
        algorithms of `conns`), noted in observed state; the driver asks
        once per VICI session. Without `conns` (a scoped look, which must
        not walk the whole namespace) the driver gives its last answer."""
        problem = self._problem(ns)
        if problem is _UNKNOWN:
            return
        try:
            kernel = self.driver.kernel_problem(ns, conns)
        except DriverError as e:
            # Unknown is not fixed: the problem noted stays as it was.
            self.log.warning("cannot ask the kernel for ESP", netns=ns, error=str(e))
            return
        self.note(ns, "; ".join(p for p in (problem, kernel) if p) or None, "charon incomplete")

    def log_problem(self, ns: str) -> None:
        """`check` for a dry run: a charon's problem logged, nothing noted."""
        problem = self._problem(ns)
        if problem is not _UNKNOWN and problem:
            self.log.error("charon incomplete", netns=ns, error=problem)

    def note(self, ns: str, problem: str | None, event: str) -> None:
        if self.observed.note_charon(ns, problem):
            if problem:
                self.log.error(event, netns=ns, error=problem)
            else:
                self.log.info("charon problem cleared", netns=ns)

    def drop_unsupported(self, ns: str, ns_desired: dict, whole: bool) -> dict:
        """Leave out connections that charon cannot negotiate (an ERROR with
        the reason) rather than load them to fail at every attempt."""
        groups = self._memo.get(ns, "by policies", (ns_desired,),
                                lambda: by_policies(ns_desired)) if whole else None
        found, complete = self._unsupported(ns, ns_desired, groups)
        if complete:
            self.observed.replace_capability_errors(ns, found,
                                                    None if whole else set(ns_desired))
        return _without(ns, ns_desired, found)

    def without_unsupported(self, ns: str, ns_desired: dict) -> dict:
        """`drop_unsupported` for a dry run: nothing noted."""
        found, _ = self._unsupported(ns, ns_desired)
        return _without(ns, ns_desired, found)

    def _problem(self, ns: str):
        try:
            return self.driver.charon_problem(ns)
        except DriverError as e:
            self.log.warning("cannot ask charon for its plugins", error=str(e))
            return _UNKNOWN

    def _unsupported(self, ns: str, ns_desired: dict, groups=None) -> tuple[dict, bool]:
        """((namespace, connection) -> why charon cannot negotiate it,
        whether every connection was asked about). The driver is asked
        once per pair of policies (`groups`: by_policies(ns_desired))."""
        found = {}
        for model, names in by_policies(ns_desired) if groups is None else groups:
            try:
                reason = self.driver.unsupported(ns, model)
            except DriverError as e:
                self.log.warning("cannot ask charon for its algorithms", error=str(e))
                return found, False
            if reason:
                found.update(((ns, name), reason) for name in names)
        return found, True

    def forget(self, ns: str) -> None:
        self._memo.forget(ns)

    def keep_only(self, served) -> None:
        self._memo.keep_only(served)

    def configure(self, ns: str, models) -> None:
        """Daemon-wide settings that follow from the namespace's connections."""
        try:
            self.driver.configure(ns, models)
        except DriverUnavailable:
            raise
        except DriverError as e:
            # Old settings stay in force; connections can still be applied.
            self.log.warning("charon settings not applied", netns=ns, error=str(e))
