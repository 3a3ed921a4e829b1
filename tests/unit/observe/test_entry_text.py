"""Status entries held packed: every text comes back as it went in, and
entries alike cost a few bytes each."""
import json

import pytest

from vpnd.observe.entry_text import EntryTexts


def entry(i: int, status="DOWN", reason="waiting for the peer to initiate") -> str:
    return json.dumps({
        "id": f"svc-{i:05d}", "file": f"/var/lib/vpnd/state/svc-{i:05d}.json",
        "namespace": "qrouter-4f1c", "status": status, "reason": "1 of 1 connections not ACTIVE",
        "ipsec_site_connections": {f"c{i:05d}": {
            "status": status, "reason": reason, "since": "2026-12-07T18:28:28Z",
            "rekeys": 0, "ike_rekeys": 0, "child_rekeys": 0,
            "rekeys_since": "2026-12-07T18:28:28Z"}}}, separators=(",", ":"))


@pytest.mark.parametrize("text", [
    "", "{}", entry(1), entry(2, "ERROR", "peer said: \u00fc\u65e5\u672c \"quoted\" \\ \n"),
    json.dumps({"errors": ["\u2028\U0001f600"] * 3}, ensure_ascii=False),
    # longer than deflate's 1 kB window, and unlike any entry
    json.dumps({"ipsec_site_connections": {f"c{i}": {"x": i * 7919} for i in range(400)}}),
])
def test_every_text_comes_back_as_it_went_in(text):
    packer = EntryTexts()
    packer.pack(entry(0))  # primed by another entry first, as in a book
    assert packer.unpack(packer.pack(text)) == text.encode()


def test_the_first_entry_primes_the_rest_and_the_priming_holds():
    packer = EntryTexts()
    first = packer.pack(json.dumps({"odd": "first entry, like no other"}))
    packed = [packer.pack(entry(i)) for i in range(1000)]
    assert packer.unpack(first) == json.dumps({"odd": "first entry, like no other"}).encode()
    assert [packer.unpack(p) for p in packed] == [entry(i).encode() for i in range(1000)]


def test_entries_alike_cost_a_few_bytes_each():
    packer = EntryTexts()
    packed = [packer.pack(entry(i)) for i in range(1000)]
    # the text is ~380 bytes; what the book holds at 10,000 is the point
    assert len(entry(1)) > 350 and max(len(p) for p in packed[1:]) <= 24
