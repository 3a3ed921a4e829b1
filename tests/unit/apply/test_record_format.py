"""applied.json and applied.journal are a format on disk: a restarted vpnd
reads what the previous version wrote. These pin it byte for byte."""
from __future__ import annotations

from vpnd.apply import record_format
from vpnd.apply.record import Record
from vpnd.base.conns import AppliedConn, Intent

C1 = AppliedConn("c1", "svc", "a.json", "fp", "vpnd-c1", "psk=ab;ike=cd;child=ef")
RECORD = (b'{"version":1,"namespaces":{"ns":{"c1":{"service_id":"svc","source":"a.json",'
          b'"fingerprint":"fp","secret_id":"vpnd-c1","parts":"psk=ab;ike=cd;child=ef"}}},'
          b'"intents":{"ns":{"c2":{"fingerprint":"fp2","ending":["7"]}}}}')
JOURNAL = ('{"intent":["ns","c2"],"fingerprint":"fp2","ending":["7"]}\n'
           '["ns","c1",{"service_id":"svc","source":"a.json","fingerprint":"fp",'
           '"secret_id":"vpnd-c1","parts":"psk=ab;ike=cd;child=ef"}]\n'
           '["ns","c3",null]\n')


def test_the_record_is_written_as_before():
    assert record_format.document({"ns": {"c1": C1}, "gone": {}},
                                  {"ns": {"c2": Intent("fp2", ("7",))}}) == RECORD


def test_journal_lines_are_written_as_before():
    assert record_format.journal_lines([
        record_format.intent_entry("ns", "c2", Intent("fp2", ("7",))),
        record_format.change_entry("ns", "c1", C1),
        record_format.change_entry("ns", "c3", None)]).decode() == JOURNAL


def test_what_an_earlier_vpnd_wrote_is_read(tmp_path):
    (tmp_path / "applied.json").write_bytes(RECORD)
    (tmp_path / "applied.journal").write_text(
        JOURNAL + '["ns","c4",{"service_id":"svc","source":"b.json","fingerprint":"fp4",'
        '"secret_id":"vpnd-c4"}]\n')  # a line from before the parts were kept
    r = Record(str(tmp_path)).load()
    assert dict(r.applied("ns")) == {"c1": C1, "c4": AppliedConn("c4", "svc", "b.json", "fp4",
                                                                  "vpnd-c4")}
    assert dict(r.intended("ns")) == {"c2": Intent("fp2", ("7",))}
    assert r.applied("ns")["c1"].parts == C1.parts


def test_a_record_written_in_blocks_is_the_json_of_the_whole(monkeypatch):
    # Made a block of connections at a time (never whole as dicts and as
    # text): byte for byte what json.dumps of the whole document writes.
    import json
    monkeypatch.setattr(record_format, "_BLOCK", 3)
    for n in (0, 1, 3, 4, 7):
        conns = {f"c{i:02d}": AppliedConn(f"c{i:02d}", "svc", "a.json", f"fp{i}", "vpnd-c")
                 for i in range(n)}
        books = {"ns2": conns, "ns1": dict(conns), "empty": {}}
        intents = {"ns1": {f"c{i}": Intent("f", ("1",)) for i in range(n)}}
        whole = {"version": 1, "namespaces": {
            ns: {k: record_format.applied_to_json(a) for k, a in sorted(c.items())}
            for ns, c in sorted(books.items()) if c},
            "intents": {ns: {k: record_format.intent_to_json(i) for k, i in sorted(c.items())}
                        for ns, c in sorted(intents.items()) if c}}
        assert record_format.document(books, intents) == \
            json.dumps(whole, separators=(",", ":")).encode()
