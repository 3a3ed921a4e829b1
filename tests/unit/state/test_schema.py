"""The published JSON Schema agrees with the validator and the examples."""
from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from vpnd.state import neutron
from vpnd.state.one_file import read_file

CONF = Path(__file__).resolve().parents[3] / "conf"
SCHEMA = json.loads((CONF / "vpnservice.schema.json").read_text())
CONN = SCHEMA["$defs"]["connection"]["properties"]


def test_schema_is_valid_json_schema():
    jsonschema.Draft202012Validator.check_schema(SCHEMA)


@pytest.mark.parametrize("example", sorted(CONF.glob("examples/*.json")), ids=lambda p: p.name)
def test_examples_pass_schema_and_validator(example):
    document = json.loads(example.read_text())
    jsonschema.validate(document, SCHEMA)
    service, errors = read_file(str(example))
    assert errors == [] and service is not None


@pytest.mark.parametrize("policy, key, values, default", [
    ("ikepolicy", "auth_algorithm", neutron.AUTH_ALGORITHMS, "sha1"),
    ("ikepolicy", "encryption_algorithm", neutron.ENCRYPTION_ALGORITHMS, "aes-128"),
    ("ikepolicy", "pfs", neutron.PFS_GROUPS, "group5"),
    ("ikepolicy", "ike_version", neutron.IKE_VERSIONS, "v1"),
    ("ikepolicy", "phase1_negotiation_mode", neutron.PHASE1_MODES, "main"),
    ("ipsecpolicy", "transform_protocol", neutron.TRANSFORM_PROTOCOLS, "esp"),
    ("ipsecpolicy", "encapsulation_mode", neutron.ENCAPSULATION_MODES, "tunnel"),
    ("ipsecpolicy", "pfs", neutron.PFS_GROUPS, "group5"),
])
def test_policy_enums_and_defaults_match_the_validator(policy, key, values, default):
    prop = CONN[policy]["properties"][key]
    assert prop["enum"] == list(values)
    defaults = neutron.IKEPOLICY_DEFAULTS if policy == "ikepolicy" else neutron.IPSECPOLICY_DEFAULTS
    assert prop["default"] == defaults[key] == default


def test_connection_enums_and_defaults_match_the_validator():
    assert CONN["initiator"]["enum"] == list(neutron.INITIATORS)
    assert CONN["dpd_action"]["enum"] == list(neutron.DPD_ACTIONS)
    assert CONN["dpd_action"]["default"] == neutron.DPD_DEFAULTS["action"]
    assert CONN["mtu"]["default"] == neutron.CONNECTION_DEFAULTS["mtu"]


def test_the_schema_bounds_are_the_validators():
    defs = SCHEMA["$defs"]
    assert defs["mtu"]["anyOf"][0]["maximum"] == neutron.MAX_MTU
    assert defs["mtu"]["anyOf"][0]["minimum"] == min(neutron.MIN_MTU.values())
    assert defs["dpd_seconds"]["anyOf"][0]["maximum"] == neutron.MAX_DPD_SECONDS
    assert defs["lifetime_value"]["anyOf"][0]["maximum"] == max(neutron.MAX_LIFETIME.values())
    assert defs["lifetime_value"]["anyOf"][0]["minimum"] == neutron.LIFETIME_MIN
    assert CONN["psk"]["maxLength"] == neutron.MAX_PSK_LENGTH
    assert CONN["peer_id"]["maxLength"] == CONN["local_id"]["maxLength"] == neutron.MAX_ID_LENGTH


@pytest.mark.parametrize("field, top", [
    ("mtu", neutron.MAX_MTU), ("dpd_timeout", neutron.MAX_DPD_SECONDS)])
def test_schema_and_validator_agree_at_each_bound(tmp_path, field, top):
    """A numeric string's value is beyond what a schema can bound (only its
    digits): there the validator alone refuses."""
    from lab.factory import connection_doc, service_doc
    for value, ok, schema_ok in ((top, True, True), (top + 1, False, False),
                                 (str(top), True, True), (str(top + 1), False, True)):
        conn = connection_doc()
        conn[field] = value
        doc = service_doc(conns=[conn])
        path = tmp_path / "f.json"
        path.write_text(json.dumps(doc))
        _, errors = read_file(str(path))
        assert jsonschema.Draft202012Validator(SCHEMA).is_valid(doc) == schema_ok, value
        assert (not errors) == ok, (value, [str(e) for e in errors])
