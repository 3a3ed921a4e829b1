"""The record's files as JSON: applied.json (the whole record, written at
each save) and applied.journal (one line per change since). One to- and
one from-JSON function per type, so both files say a connection alike.

This is a format on disk: a vpnd restarted after an upgrade reads what
the previous version wrote, so its keys and their order stay as they are
(tests/unit/apply/test_record_format.py holds them).
"""
from __future__ import annotations

import json
from typing import Mapping

from vpnd.base.conns import AppliedConn, Intent

VERSION = 1


def applied_to_json(applied: AppliedConn) -> dict:
    return {"service_id": applied.service_id, "source": applied.source,
            "fingerprint": applied.fingerprint, "secret_id": applied.secret_id,
            "parts": applied.parts}


def applied_from_json(name: str, fields: dict) -> AppliedConn:
    # A record from before `parts` has none: the field's default.
    return AppliedConn(name=name, **fields)


def intent_to_json(intent: Intent) -> dict:
    return {"fingerprint": intent.fingerprint, "ending": list(intent.ending)}


def intent_from_json(fields: dict) -> Intent:
    return Intent(fields["fingerprint"], tuple(fields["ending"]))


def document(namespaces: Mapping[str, Mapping[str, AppliedConn]],
             intents: Mapping[str, Mapping[str, Intent]]) -> bytes:
    """applied.json: every connection applied, and the changes begun and
    never finished (kept until they are)."""
    data = {"version": VERSION, "namespaces": {
        ns: {name: applied_to_json(a) for name, a in sorted(conns.items())}
        for ns, conns in sorted(namespaces.items()) if conns},
        "intents": {ns: {name: intent_to_json(i) for name, i in sorted(conns.items())}
                    for ns, conns in sorted(intents.items()) if conns}}
    return json.dumps(data, separators=(",", ":")).encode()


def read_document(raw: bytes) -> tuple[dict[str, dict[str, AppliedConn]],
                                       dict[str, dict[str, Intent]]]:
    """applied.json -> (namespace -> name -> AppliedConn, namespace ->
    name -> Intent)."""
    data = json.loads(raw)
    namespaces = {ns: {name: applied_from_json(name, fields) for name, fields in conns.items()}
                  for ns, conns in data.get("namespaces", {}).items()}
    intents = {ns: {name: intent_from_json(i) for name, i in conns.items()}
               for ns, conns in data.get("intents", {}).items()}
    return namespaces, intents


def change_entry(namespace: str, name: str, applied: AppliedConn | None) -> list:
    """A journal line's value: a change landed (None: the connection is gone)."""
    return [namespace, name, None if applied is None else applied_to_json(applied)]


def intent_entry(namespace: str, name: str, intent: Intent) -> dict:
    """A journal line's value: a change begun."""
    return {"intent": [namespace, name], **intent_to_json(intent)}


def journal_lines(entries) -> bytes:
    return "".join(json.dumps(e, separators=(",", ":")) + "\n" for e in entries).encode()


def read_journal_line(line: str) -> tuple[str, str, Intent | dict | None]:
    """(namespace, name, what): an Intent for a change begun, else the
    record line's fields (None: forgotten). ValueError, KeyError or
    TypeError: a line torn by a kill."""
    entry = json.loads(line)
    if isinstance(entry, dict):
        ns, name = entry["intent"]
        return ns, name, intent_from_json(entry)
    ns, name, fields = entry
    return ns, name, fields
