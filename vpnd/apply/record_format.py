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
    return b"".join(document_pieces(namespaces, intents))


# Connections made JSON a block at a time: the whole record as dicts, then
# as text, then as bytes, was 10 MB at once at 10,000 connections (the
# top of a cold start's peak RSS), for a file of 2.5 MB.
_BLOCK = 500


def document_pieces(namespaces: Mapping[str, Mapping[str, AppliedConn]],
                    intents: Mapping[str, Mapping[str, Intent]]):
    """applied.json in pieces, byte for byte document()'s (see _BLOCK)."""
    yield b'{"version":%d,"namespaces":{' % VERSION
    yield from _books(namespaces, applied_to_json)
    yield b'},"intents":{'
    yield from _books(intents, intent_to_json)
    yield b"}}"


def _books(books: Mapping[str, Mapping], to_json):
    """`ns:{name:{...},...}` for each namespace that has any, sorted, in
    blocks of _BLOCK connections: what json.dumps of the whole writes."""
    first = True
    for ns, conns in sorted(books.items()):
        if not conns:
            continue
        yield f'{"," * (not first)}{_dumps(ns)}:{{'.encode()
        first = False
        items = sorted(conns.items())
        for i in range(0, len(items), _BLOCK):
            block = {name: to_json(v) for name, v in items[i:i + _BLOCK]}
            yield ("," * bool(i) + _dumps(block)[1:-1]).encode()
        yield b"}"


def _dumps(value) -> str:
    return json.dumps(value, separators=(",", ":"))


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
