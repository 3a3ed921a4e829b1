"""Values as neutron-vpnaas's server sends them are accepted; what would
make a PSK any peer's is refused in those forms too.

make_vpnservice_dict (service_drivers/base_ipsec.py) puts an '@' before
both ids when either is not an IP address: a tenant's user@host arrives
as @user@host, an address beside an FQDN as @198.51.100.7, a 255-character
id as 256 characters. sha1 and 3des are gone from neutron-vpnaas 29's
database, but older servers still send them: accepted, with a warning in
the service's status entry.
"""
from __future__ import annotations

import json

import pytest

from lab.factory import connection_doc, service_doc
from vpnd.state import neutron
from vpnd.drivers.strongswan_mapping import render
from vpnd.state.one_file import MAX_ERRORS
from vpnd.state.statefiles import StateDir
from vpnd.observe.status import service_entry
from vpnd.state.validation import parse_confined

PSK = "neutron-forms-psk-4e7b"
CONN = "$.ipsec_site_connections[0]"
# 255 characters: four labels of 63 and their dots, a name but no DNS name.
LONG_NAME = ".".join(["x" * 63] * 4)
assert len(LONG_NAME) == neutron.MAX_ID_LENGTH


def parse(**fields):
    return parse_confined(service_doc(conns=[connection_doc("c1", PSK, **fields)]), "t.json")


def errors(**fields) -> list[str]:
    return [str(e) for e in parse(**fields).all_errors]


# --- identities --------------------------------------------------------------

SENT = {
    "user@host": "@ops@vpn.example.org",
    "address beside an FQDN": "@198.51.100.7",
    "IPv6 address beside an FQDN": "@2001:db8::7",
    "FQDN": "@peer.example.org",
    "@name": "@@peer.example.org",
    "key id": "@@#a1b2c3",
    "255 characters after the '@'": "@" + LONG_NAME,
}


@pytest.mark.parametrize("key", ["peer_id", "local_id"])
@pytest.mark.parametrize("value", SENT.values(), ids=SENT.keys())
def test_an_id_as_neutron_sends_it_is_accepted_and_reaches_charon_verbatim(key, value):
    parsed = parse(**{key: value})
    assert parsed.all_errors == []
    [conn] = parsed.service.connections
    assert getattr(conn, key) == value
    side = render(conn, libipsec=True).conn["c1"]["remote" if key == "peer_id" else "local"]
    assert side["id"] == value


def test_both_ids_with_neutrons_at_are_accepted_together():
    parsed = parse(peer_id="@198.51.100.7", local_id="@vpn.example.org")
    [conn] = parsed.service.connections
    assert (conn.peer_id, conn.local_id) == ("@198.51.100.7", "@vpn.example.org")


REFUSED = {
    "@%any": "would not name one peer: without its '@', strongSwan reads it as %any",
    "@%any6": "would not name one peer: without its '@', strongSwan reads it as %any",
    "@*": "would not name one peer: without its '@', strongSwan reads it as %any",
    "@0.0.0.0": "would not name one peer: without its '@', strongSwan reads it as %any",
    "@::": "would not name one peer: without its '@', strongSwan reads it as %any",
    "@0:0::0": "would not name one peer: without its '@', it is the unspecified address",
    "@@0.0.0.0": "would not name one peer: without its '@', strongSwan reads it as %any",
    "@*.example.org": "would not name one peer: without its '@', '*' is a wildcard",
    "@ops@*": "would not name one peer: without its '@', '*' is a wildcard",
    "@198.51.100.0/24": "would not name one peer: without its '@', strongSwan reads it "
                        "as a subnet or a range",
    "@0.0.0.0/0": "would not name one peer: without its '@', strongSwan reads it "
                  "as a subnet or a range",
    "@2001:db8::1-2001:db8::9": "would not name one peer: without its '@', strongSwan reads "
                                "it as a subnet or a range",
    "@ipv4range:198.51.100.1-198.51.100.9": "would not name one peer: without its '@', "
                                            "strongSwan reads it as a subnet or a range",
    "@0x0": "would not name one peer: without its '@', the resolver reads it as an IPv4",
    "@": "'@' is neither an IP address, a host name, an @name nor user@host: no id "
         "follows the '@'",
    "@" + LONG_NAME + "x": f"{neutron.MAX_ID_LENGTH + 1} characters after its '@', more "
                           f"than the {neutron.MAX_ID_LENGTH} allowed",
    "@a=b": "is neither an IP address, a host name, an @name nor user@host, nor one of "
            "them after an '@'",
}


@pytest.mark.parametrize("key", ["peer_id", "local_id"])
@pytest.mark.parametrize("value, reason", REFUSED.items(),
                         ids=[v[:24] for v in REFUSED])
def test_an_id_that_is_no_one_peer_is_refused_in_neutrons_form_too(key, value, reason):
    parsed = parse(**{key: value})
    assert parsed.service.connections == ()
    [error] = parsed.broken["c1"]
    assert (error.file, error.path) == ("t.json", f"{CONN}.{key}")
    assert reason in error.message, error.message
    assert str(error).startswith(f"t.json: {CONN}.{key}: ")


def test_a_tenants_id_without_neutrons_at_keeps_its_bound_of_255():
    assert errors(peer_id="ops@" + "h" * 252) == [
        f"t.json: {CONN}.peer_id: 256 characters, more than the 255 allowed"]


# --- sha1 and 3des -----------------------------------------------------------

OLD_POLICIES = {
    "ikepolicy": {"auth_algorithm": "sha1", "encryption_algorithm": "3des"},
    "ipsecpolicy": {"auth_algorithm": "sha1", "encryption_algorithm": "aes-256"},
}
OLD_VALUES = [
    (f"{CONN}.ikepolicy.auth_algorithm", "sha1", "sha256"),
    (f"{CONN}.ikepolicy.encryption_algorithm", "3des", "aes-256"),
    (f"{CONN}.ipsecpolicy.auth_algorithm", "sha1", "sha256"),
]


def status_entry(tmp_path, doc, mode=0o600):
    """The status entry of `doc`, read from a state dir as vpnd reads it."""
    d = tmp_path / "state"
    d.mkdir()
    path = d / "svc.json"
    path.write_text(json.dumps(doc))
    path.chmod(mode)
    state, _ = StateDir(str(d)).scan()
    return str(path), service_entry(str(path), state, {}, {}, {}, {})


def test_sha1_and_3des_are_applied():
    parsed = parse(**OLD_POLICIES)
    assert parsed.all_errors == []
    [conn] = parsed.service.connections
    rendered = render(conn, libipsec=True)
    assert rendered.conn["c1"]["proposals"] == ["3des-sha1-modp1536"]
    assert rendered.conn["c1"]["children"]["c1"]["esp_proposals"] == ["aes256-sha1-modp1536"]


def test_sha1_and_3des_are_a_warning_in_the_status_entry_naming_path_value_and_neutron(
        tmp_path):
    path, entry = status_entry(tmp_path, service_doc(
        conns=[connection_doc("c1", PSK, **OLD_POLICIES)]))
    assert "errors" not in entry and entry["ipsec_site_connections"]["c1"]["status"] != "ERROR"
    assert entry["warnings"] == [
        f"{path}: {where}: '{old}' is deprecated: neutron-vpnaas 29 removed it, and its "
        f"database migration rewrites it to '{new}'; vpnd still accepts it"
        for where, old, new in OLD_VALUES]


def test_the_deprecation_warnings_come_after_the_file_permission_warning(tmp_path):
    _, entry = status_entry(tmp_path, service_doc(
        conns=[connection_doc("c1", PSK, **OLD_POLICIES)]), mode=0o644)
    assert entry["warnings"][0].startswith("readable by its group and everyone")
    assert len(entry["warnings"]) == 1 + len(OLD_VALUES)


def test_no_warning_for_neutron_29s_values_nor_for_vpnds_own_default(tmp_path):
    # A default is vpnd's, not a row Neutron's migration rewrites.
    assert neutron.IKEPOLICY_DEFAULTS["auth_algorithm"] == "sha1"
    assert parse().warnings == []
    _, entry = status_entry(tmp_path, service_doc(conns=[connection_doc(
        "c1", PSK, ikepolicy={"auth_algorithm": "sha256", "encryption_algorithm": "aes-256"})]))
    assert "warnings" not in entry


def test_a_file_of_many_old_connections_lists_a_bounded_number_of_warnings(tmp_path):
    conns = [connection_doc(f"c{i}", PSK, peer_address=f"203.0.113.{i + 2}",
                            peer_id=f"203.0.113.{i + 2}", ikepolicy={"auth_algorithm": "sha1"})
             for i in range(MAX_ERRORS + 5)]
    _, entry = status_entry(tmp_path, service_doc(conns=conns))
    assert len(entry["warnings"]) == MAX_ERRORS + 1
    assert entry["warnings"][-1].endswith("$: and 5 more problems")


def test_an_invalid_connection_keeps_its_warning_beside_its_error():
    parsed = parse(mtu=1, **OLD_POLICIES)
    assert [e.path for e in parsed.broken["c1"]] == [f"{CONN}.mtu"]
    assert [w.path for w in parsed.warnings] == [where for where, _, _ in OLD_VALUES]


# --- PSKs --------------------------------------------------------------------

@pytest.mark.parametrize("value", [*REFUSED, *SENT.values()],
                         ids=[v[:24] for v in [*REFUSED, *SENT.values()]])
def test_no_error_warning_or_status_entry_echoes_a_psk(tmp_path, value):
    doc = service_doc(conns=[
        connection_doc("c1", PSK, peer_id=value, local_id=value, mtu=1, **OLD_POLICIES),
        connection_doc("c2", [PSK], peer_address="203.0.113.9", peer_id="@"),
        connection_doc("c3", {"psk": PSK}, peer_address="203.0.113.10", peer_id="@%any"),
        connection_doc("c4", PSK * 50, peer_address="203.0.113.11", **OLD_POLICIES),
    ])
    parsed = parse_confined(doc, "t.json")
    said = [str(e) for e in [*parsed.all_errors, *parsed.warnings]]
    assert len(parsed.broken) == 4 and parsed.warnings
    assert not [s for s in said if PSK in s]
    _, entry = status_entry(tmp_path, doc)
    assert PSK not in json.dumps(entry)
