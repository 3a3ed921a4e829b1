"""What a full look reuses from the last one: results of pure work over
every connection of a namespace, made again only when what they are made
from moved.

A resync that finds nothing changed still reads charon and the namespace
afresh (that is what makes it the backstop); what it need not redo is
walking 10,000 connections to learn again what their rendering and
record already said. Each result is held with the inputs it was made
from: versions (plan.render's and apply.record's, which move with every
change), values read this look (compared by value), or objects this memo
gave out before (compared by identity: held here, so an id is never
another object's).
"""
from __future__ import annotations

from typing import Callable

# Compared by value; anything else (a dict, a tuple of models) by identity.
_BY_VALUE = (int, str, bool, frozenset, type(None))


def _same(a: tuple, b: tuple) -> bool:
    return len(a) == len(b) and all(
        x is y or (type(x) is type(y) and isinstance(x, _BY_VALUE) and x == y)
        for x, y in zip(a, b))


class LookMemo:
    """One result per (namespace, what), with the inputs it was made from.
    Each namespace is looked at by one thread at a time, so its entries
    are too."""

    def __init__(self):
        self._held: dict[tuple[str, str], tuple[tuple, object]] = {}

    def get(self, ns: str, what: str, inputs: tuple, make: Callable[[], object]):
        """`make()`, or what it gave the last time for these same inputs.
        Inputs are evaluated before `make` runs: a version read first
        means the result is at least that new."""
        held = self._held.get((ns, what))
        if held is not None and _same(held[0], inputs):
            return held[1]
        value = make()
        self._held[(ns, what)] = (inputs, value)
        return value

    def forget(self, ns: str) -> None:
        """A namespace no longer looked at holds nothing here."""
        self.keep_only(lambda held: held != ns)

    def keep_only(self, served) -> None:
        """Only the namespaces for which `served(ns)` holds keep anything."""
        # list(): a snapshot, as other namespaces' looks run in other threads.
        for key in [k for k in list(self._held) if not served(k[0])]:
            self._held.pop(key, None)
