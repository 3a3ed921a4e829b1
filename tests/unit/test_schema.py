"""The published JSON Schema agrees with the validator and the examples."""
from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from vpnd import neutron
from vpnd.statefiles import read_file

CONF = Path(__file__).resolve().parents[2] / "conf"
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
