"""VICI answers as vpnd's types: str for bytes, and list-sas's nested
dicts as LiveState's IkeSa and ChildSa, so that no VICI dictionary leaks
past the driver. Pure: it only converts what the client read.
"""
from __future__ import annotations

from vpnd.base.live import ChildSa, IkeSa, LiveState


def decode(value):
    """VICI answers in bytes; the rest of vpnd speaks str."""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, dict):
        return {k: decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [decode(v) for v in value]
    return value


def live_state(conns: frozenset[str], shared: frozenset[str], sas: list[dict]) -> LiveState:
    """The names get-conns and get-shared listed (vici_query.SameNames),
    and list-sas's stream."""
    return LiveState(conns=conns, shared=shared, sas=tuple(ike_sas(decode(sas))))


def ike_sas(entries: list[dict]) -> list[IkeSa]:
    """list-sas streams one {name: sa} dict per IKE_SA (decoded)."""
    result = []
    for entry in entries:
        for name, sa in entry.items():
            children = tuple(_child_sa(c) for c in (sa.get("child-sas") or {}).values())
            result.append(IkeSa(
                name=name, uniqueid=sa.get("uniqueid", ""), state=sa.get("state", ""),
                children=children, spi_i=sa.get("initiator-spi", ""),
                spi_r=sa.get("responder-spi", ""), age=_int(sa.get("established")),
                algorithms=_algorithms(sa), version=sa.get("version", "")))
    return result


def _child_sa(c: dict) -> ChildSa:
    return ChildSa(
        name=c.get("name", ""), uniqueid=c.get("uniqueid", ""), state=c.get("state", ""),
        spi_in=c.get("spi-in", ""), spi_out=c.get("spi-out", ""),
        age=_int(c.get("install-time")),
        bytes_in=_int(c.get("bytes-in")), bytes_out=_int(c.get("bytes-out")),
        packets_in=_int(c.get("packets-in")), packets_out=_int(c.get("packets-out")),
        local_ts=tuple(c.get("local-ts") or ()), remote_ts=tuple(c.get("remote-ts") or ()),
        algorithms=_algorithms(c))


def _algorithms(sa: dict) -> str:
    """As swanctl --list-sas prints them: AES_CBC-128/HMAC_SHA2_256_128/..."""
    enc = sa.get("encr-alg", "")
    if enc and sa.get("encr-keysize"):
        enc = f"{enc}-{sa['encr-keysize']}"
    parts = [enc, sa.get("integ-alg", ""), sa.get("prf-alg", ""), sa.get("dh-group", "")]
    return "/".join(p for p in parts if p)


def _int(value) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0
