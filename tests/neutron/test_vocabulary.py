"""vpnd's Neutron vocabulary (vpnd/state/neutron.py) agrees with Neutron's own.

Read from the installed neutron-lib API definitions (vpn.py and every
definition neutron-vpnaas's extensions load, vpn_aes_ctr's CTR names
among them) and neutron-vpnaas's database model (vpn_models.py), its
validator and its migrations. Acceptance is checked by parsing a small
agent payload with vpnd.validation, not by comparing vpnd's constants
alone: a value Neutron takes that vpnd's parser refuses fails here.

- Every value an API lists (of any release: vpn.py still lists sha1 and
  3des) or the database stores is accepted; vpnd accepts no other.
- The values an API lists but neutron-vpnaas 29's database refuses are
  exactly those vpnd warns of, naming what migration 842256a43ce2
  rewrites them to.
- Defaults, bounds and MTU minimums are Neutron's.
- Ids as make_vpnservice_dict turns a tenant's into the agent payload
  ('@' before both when either is not an address) are accepted, and
  those meaning any peer refused.

Run with ``python -m pytest -p neutron`` (neutron has to be imported
before oslo.service).
"""
import neutron  # noqa: F401  -- first: picks oslo.service's threading backend

import copy
import importlib
import importlib.util
import inspect
import json
import pathlib
import pkgutil
import re
import types

import pytest
from neutron_lib.api import extensions as lib_extensions
from neutron_lib.api.definitions import vpn as vpn_def
from neutron_lib.api.definitions import vpn_aes_ctr

import neutron_vpnaas
import neutron_vpnaas.extensions
from neutron_vpnaas.db.vpn import vpn_db, vpn_models, vpn_validator
from neutron_vpnaas.services.vpn.service_drivers import base_ipsec

from vpnd.state import neutron as vocab
from vpnd.neutron_driver import state_files
from vpnd.state.validation import parse_confined

IKE, IPSEC, CONN = vpn_def.IKE_POLICIES, vpn_def.IPSEC_POLICIES, vpn_def.IPSEC_SITE_CONNECTIONS
PATH = "$.ipsec_site_connections[0]"


def _loaded_definitions() -> list:
    """The API definitions neutron-vpnaas's extensions load, vpn.py first."""
    found = []
    for info in pkgutil.iter_modules(neutron_vpnaas.extensions.__path__):
        module = importlib.import_module(f"neutron_vpnaas.extensions.{info.name}")
        for obj in vars(module).values():
            if (isinstance(obj, type) and issubclass(obj, lib_extensions.APIExtensionDescriptor)
                    and obj.__module__ == module.__name__
                    and getattr(obj, "api_definition", None) is not None):
                found.append(obj.api_definition)
    assert vpn_def in found and vpn_aes_ctr in found, found
    return [vpn_def, *(d for d in found if d is not vpn_def)]


LOADED = _loaded_definitions()


def _api(resource: str) -> dict:
    """A resource's attributes as the server sees them: each loaded
    definition's map laid over vpn.py's, as extensions extend resources."""
    attrs = copy.deepcopy(vpn_def.RESOURCE_ATTRIBUTE_MAP[resource])
    for definition in LOADED[1:]:
        for name, attr in definition.RESOURCE_ATTRIBUTE_MAP.get(resource, {}).items():
            attrs[name] = {**attrs.get(name, {}), **attr}
    return attrs


def _listed(attr: dict, sub: str | None = None) -> list:
    validate = attr["validate"]
    if sub is not None:
        validate = validate["type:dict_or_empty"][sub]
    return list(validate["type:values"])


def api_values(resource: str, name: str, sub: str | None = None) -> set:
    """What any API Neutron has shipped takes here: vpn.py's list (older
    releases send what it lists) and each loaded definition's."""
    values = set(_listed(vpn_def.RESOURCE_ATTRIBUTE_MAP[resource][name], sub))
    for definition in LOADED:
        attr = definition.RESOURCE_ATTRIBUTE_MAP.get(resource, {}).get(name)
        if attr is not None and "validate" in attr:
            values |= set(_listed(attr, sub))
    return values


def db_values(model, column: str) -> set:
    return set(model.__table__.c[column].type.enums)


# --- a small agent payload, as make_vpnservice_dict shapes it ---------------

def payload(conn: dict | None = None, ike: dict | None = None,
            ipsec: dict | None = None) -> dict:
    c = {"id": "c1", "peer_address": "203.0.113.2", "peer_id": "203.0.113.2",
         "local_cidrs": ["192.0.2.0/24"], "peer_cidrs": ["198.51.100.0/24"],
         "psk": "vocabulary-psk-5d1c", "ikepolicy": dict(ike or {}),
         "ipsecpolicy": dict(ipsec or {}), **(conn or {})}
    return {"id": "s1", "router_id": "r1", "external_ip": "203.0.113.1",
            "ipsec_site_connections": [c]}


def parsed(doc: dict):
    return parse_confined(json.loads(json.dumps(doc)), "vocabulary.json")


def accepted(doc: dict):
    """The one connection `doc` becomes, asserting vpnd accepts it."""
    p = parsed(doc)
    assert p.all_errors == [], [str(e) for e in p.all_errors]
    [connection] = p.service.connections
    return connection, p.warnings


# Each vocabulary: (Neutron's API values, its database's, vpnd's constant,
# how a payload says a value, where vpnd's model keeps it).
VOCABULARIES = {
    "initiator": (api_values(CONN, "initiator"),
                  db_values(vpn_models.IPsecSiteConnection, "initiator"), vocab.INITIATORS,
                  lambda v: payload(conn={"initiator": v}), lambda c: c.initiator),
    "dpd action": (api_values(CONN, "dpd", "action"),
                   db_values(vpn_models.IPsecSiteConnection, "dpd_action"), vocab.DPD_ACTIONS,
                   lambda v: payload(conn={"dpd_action": v}), lambda c: c.dpd.action),
    "dpd action, API shape": (api_values(CONN, "dpd", "action"),
                              db_values(vpn_models.IPsecSiteConnection, "dpd_action"),
                              vocab.DPD_ACTIONS, lambda v: payload(conn={"dpd": {"action": v}}),
                              lambda c: c.dpd.action),
    "ike version": (api_values(IKE, "ike_version"), db_values(vpn_models.IKEPolicy, "ike_version"),
                    vocab.IKE_VERSIONS, lambda v: payload(ike={"ike_version": v}),
                    lambda c: c.ikepolicy.ike_version),
    "phase1 mode": (api_values(IKE, "phase1_negotiation_mode"),
                    db_values(vpn_models.IKEPolicy, "phase1_negotiation_mode"), vocab.PHASE1_MODES,
                    lambda v: payload(ike={"phase1_negotiation_mode": v}),
                    lambda c: c.ikepolicy.phase1_negotiation_mode),
    "transform protocol": (api_values(IPSEC, "transform_protocol"),
                           db_values(vpn_models.IPsecPolicy, "transform_protocol"),
                           vocab.TRANSFORM_PROTOCOLS,
                           lambda v: payload(ipsec={"transform_protocol": v}),
                           lambda c: c.ipsecpolicy.transform_protocol),
    "encapsulation mode": (api_values(IPSEC, "encapsulation_mode"),
                           db_values(vpn_models.IPsecPolicy, "encapsulation_mode"),
                           vocab.ENCAPSULATION_MODES,
                           lambda v: payload(ipsec={"encapsulation_mode": v}),
                           lambda c: c.ipsecpolicy.encapsulation_mode),
}
for _res, _model, _key, _attr in ((IKE, vpn_models.IKEPolicy, "ike", "ikepolicy"),
                                  (IPSEC, vpn_models.IPsecPolicy, "ipsec", "ipsecpolicy")):
    for _name, _const in (("auth_algorithm", vocab.AUTH_ALGORITHMS),
                          ("encryption_algorithm", vocab.ENCRYPTION_ALGORITHMS),
                          ("pfs", vocab.PFS_GROUPS)):
        VOCABULARIES[f"{_attr} {_name}"] = (
            api_values(_res, _name), db_values(_model, _name), _const,
            lambda v, k=_key, n=_name: payload(**{k: {n: v}}),
            lambda c, a=_attr, n=_name: getattr(getattr(c, a), n))
    # The agent payload carries the database's flat lifetime_units; the
    # API's nested lifetime.units only seconds.
    VOCABULARIES[f"{_attr} lifetime units"] = (
        api_values(_res, "lifetime", "units"), db_values(_model, "lifetime_units"),
        vocab.LIFETIME_UNITS, lambda v, k=_key: payload(**{k: {"lifetime_units": v}}),
        lambda c, a=_attr: getattr(c, a).lifetime.units)


@pytest.mark.parametrize("name", VOCABULARIES)
def test_vpnd_accepts_what_neutron_accepts_and_nothing_else(name):
    api, db, constant, doc, field = VOCABULARIES[name]
    for value in sorted(api | db):
        connection, _ = accepted(doc(value))
        assert field(connection) == value, (name, value)
    assert set(constant) == api | db, (name, set(constant) ^ (api | db))
    refused = parsed(doc("not-a-neutron-value"))
    assert refused.service.connections == () and refused.broken["c1"]


ALGORITHMS = [(res, name, key) for res, key in ((IKE, "ikepolicy"), (IPSEC, "ipsecpolicy"))
              for name in ("auth_algorithm", "encryption_algorithm")]
MODELS = {IKE: vpn_models.IKEPolicy, IPSEC: vpn_models.IPsecPolicy}


def _migration_rewrites() -> dict:
    """{(table, column, old): new} as migration 842256a43ce2 rewrites rows:
    its upgrade() run against a recording stand-in for alembic's op."""
    root = pathlib.Path(neutron_vpnaas.__file__).parent
    [path] = root.glob("db/migration/alembic_migrations/versions/*/*/842256a43ce2_*.py")
    spec = importlib.util.spec_from_file_location("migration_842256a43ce2", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    statements = []
    module.op = types.SimpleNamespace(execute=lambda s: statements.append(str(s)),
                                      alter_column=lambda *a, **k: None)
    module.upgrade()
    rewrites = {}
    for text in statements:
        m = re.fullmatch(r"UPDATE (\w+) SET (\w+) = '([^']+)' WHERE \2 = '([^']+)'", text)
        assert m, text
        table, column, new, old = m.groups()
        rewrites[(table, column, old)] = new
    assert rewrites
    return rewrites


REWRITES = _migration_rewrites()


@pytest.mark.parametrize("resource, name, key", ALGORITHMS)
def test_what_the_29_database_refuses_is_exactly_what_vpnd_warns_of(resource, name, key):
    removed = api_values(resource, name) - db_values(MODELS[resource], name)
    assert removed, "neutron-vpnaas's database takes every API value again: are vpnd's "\
                    "warnings still due?"
    side = "ike" if key == "ikepolicy" else "ipsec"
    warned = {}
    for value in sorted(api_values(resource, name) | db_values(MODELS[resource], name)):
        _, warnings = accepted(payload(**{side: {name: value}}))
        assert [w.path for w in warnings] in ([], [f"{PATH}.{key}.{name}"]), warnings
        if warnings:
            warned[value] = warnings[0].message
    assert set(warned) == removed
    assert set(vocab.REMOVED_IN_29[name]) == removed
    table = MODELS[resource].__tablename__
    for value, message in warned.items():
        new = REWRITES[(table, name, value)]
        assert vocab.REMOVED_IN_29[name][value] == new
        assert message == (f"'{value}' is deprecated: neutron-vpnaas 29 removed it, and its "
                           f"database migration rewrites it to '{new}'; vpnd still accepts it")


def test_every_row_the_migration_rewrites_is_one_vpnd_warns_of():
    assert {(column, old) for _, column, old in REWRITES} == \
        {(column, old) for column, olds in vocab.REMOVED_IN_29.items() for old in olds}


# --- defaults and bounds ------------------------------------------------------

def _lifetime_default(method) -> dict:
    """What vpn_db's create_*policy takes for a lifetime the request leaves out."""
    source = inspect.getsource(method)
    units = re.search(r"lifetime_info\.get\('units', '(\w+)'\)", source)
    value = re.search(r"lifetime_info\.get\('value', (\d+)\)", source)
    assert units and value, method
    return {"units": units.group(1), "value": int(value.group(1))}


def test_policy_defaults_are_the_loaded_apis():
    for resource, defaults in ((IKE, vocab.IKEPOLICY_DEFAULTS),
                               (IPSEC, vocab.IPSECPOLICY_DEFAULTS)):
        attrs = _api(resource)
        chosen = {n for n, a in attrs.items() if "type:values" in a.get("validate", {})}
        assert set(defaults) == chosen, resource
        assert defaults == {n: attrs[n]["default"] for n in chosen}, resource


def test_lifetime_default_and_minimum_are_neutrons():
    plugin = vpn_db.VPNPluginDb
    for method in (plugin.create_ikepolicy, plugin.create_ipsecpolicy):
        assert _lifetime_default(method) == vocab.DEFAULT_LIFETIME
    for resource in (IKE, IPSEC):
        low, _ = _api(resource)["lifetime"]["validate"]["type:dict_or_empty"]["value"]["type:range"]
        assert low == vocab.LIFETIME_MIN
    for key in ("ikepolicy", "ipsecpolicy"):
        side = key[:-6]
        accepted(payload(**{side: {"lifetime_value": vocab.LIFETIME_MIN}}))
        too_short = parsed(payload(**{side: {"lifetime_value": vocab.LIFETIME_MIN - 1}}))
        assert [e.path for e in too_short.broken["c1"]] == [f"{PATH}.{key}.lifetime_value"]


def test_connection_and_dpd_defaults_are_neutrons():
    attrs = _api(CONN)
    assert vocab.CONNECTION_DEFAULTS == {k: attrs[k]["default"] for k in vocab.CONNECTION_DEFAULTS}
    sitecon = {}
    vpn_validator.VpnReferenceValidator().assign_sensible_ipsec_sitecon_defaults(sitecon)
    assert {f"dpd_{k}": v for k, v in vocab.DPD_DEFAULTS.items()} == sitecon
    # And what a payload that leaves them out becomes.
    connection, _ = accepted(payload())
    assert (connection.mtu, connection.initiator, connection.admin_state_up,
            connection.local_id) == tuple(vocab.CONNECTION_DEFAULTS.values())
    assert (connection.dpd.action, connection.dpd.interval, connection.dpd.timeout) == \
        (sitecon["dpd_action"], sitecon["dpd_interval"], sitecon["dpd_timeout"])
    for key, model in (("ikepolicy", IKE), ("ipsecpolicy", IPSEC)):
        policy = getattr(connection, key)
        attrs = _api(model)
        for name in (vocab.IKEPOLICY_DEFAULTS if model == IKE else vocab.IPSECPOLICY_DEFAULTS):
            assert getattr(policy, name) == attrs[name]["default"], (key, name)
        assert (policy.lifetime.units, policy.lifetime.value) == \
            (vocab.DEFAULT_LIFETIME["units"], vocab.DEFAULT_LIFETIME["value"])


@pytest.mark.parametrize("version, local, peer", [
    (4, "192.0.2.0/24", "198.51.100.0/24"), (6, "2001:db8:a::/64", "2001:db8:b::/64")])
def test_mtu_minimums_are_neutrons(version, local, peer):
    minimum = vpn_validator.VpnReferenceValidator.IP_MIN_MTU[version]
    assert vocab.MIN_MTU[version] == minimum
    addresses = {"peer_address": "2001:db8:f::2", "peer_id": "2001:db8:f::2",
                 "external_ip": "2001:db8:f::1"} if version == 6 else {}
    conn = {"local_cidrs": [local], "peer_cidrs": [peer], **addresses}
    connection, _ = accepted(payload(conn={**conn, "mtu": minimum}))
    assert connection.mtu == minimum
    too_small = parsed(payload(conn={**conn, "mtu": minimum - 1}))
    [error] = too_small.broken["c1"]
    assert error.path == f"{PATH}.mtu" and f"at least {minimum} for IPv{version}" in error.message


# --- ids, as make_vpnservice_dict sends them -----------------------------------

class _Row:
    """A database row as make_vpnservice_dict reads one: dict() gives its
    columns (as neutron-lib's ModelBase iterates them), attributes its
    relationships too."""

    def __init__(self, columns: dict, **relationships):
        self._columns = columns
        vars(self).update(columns, **relationships)

    def keys(self):
        return self._columns.keys()

    def __getitem__(self, key):
        return self._columns[key]


def agent_payload(peer_id: str, local_id: str) -> dict:
    """What neutron-vpnaas's server sends an agent for a tenant's ids:
    make_vpnservice_dict run on rows, as the driver writes it to a file."""
    ike = {"id": "ike1", "auth_algorithm": "sha256", "encryption_algorithm": "aes-128",
           "phase1_negotiation_mode": "main", "lifetime_units": "seconds",
           "lifetime_value": 3600, "ike_version": "v2", "pfs": "group14"}
    ipsec = {"id": "ipsec1", "transform_protocol": "esp", "auth_algorithm": "sha256",
             "encryption_algorithm": "aes-128", "encapsulation_mode": "tunnel",
             "lifetime_units": "seconds", "lifetime_value": 3600, "pfs": "group14"}
    conn = _Row({"id": "c1", "peer_address": "203.0.113.2", "peer_id": peer_id,
                 "local_id": local_id, "route_mode": "static", "mtu": 1500,
                 "initiator": "bi-directional", "auth_mode": "psk",
                 "psk": "vocabulary-psk-5d1c", "dpd_action": "hold", "dpd_interval": 30,
                 "dpd_timeout": 120, "status": "PENDING_CREATE", "admin_state_up": True},
                ikepolicy=_Row(ike), ipsecpolicy=_Row(ipsec), peer_cidrs=[],
                local_ep_group=_Row({}, endpoints=[_Row({"endpoint": "subnet-1"})]),
                peer_ep_group=_Row({}, endpoints=[_Row({"endpoint": "198.51.100.0/24"})]))
    service = _Row({"id": "s1", "router_id": "r1", "admin_state_up": True,
                    "status": "PENDING_CREATE", "external_v4_ip": "203.0.113.1",
                    "external_v6_ip": None, "subnet_id": None},
                   subnet=None, ipsec_site_connections=[conn])
    driver = types.SimpleNamespace(
        get_external_ip_based_on_peer=lambda s, c:
            base_ipsec.BaseIPsecVPNDriver.get_external_ip_based_on_peer(None, s, c))
    sent = base_ipsec.BaseIPsecVPNDriver.make_vpnservice_dict(
        driver, service, {"subnet-1": "192.0.2.0/24"})
    return json.loads(state_files.render(sent, "qrouter-r1"))


LONG = ".".join(["x" * 63] * 4)  # 255 characters, Neutron's column


@pytest.mark.parametrize("peer_id, local_id, sent", [
    ("ops@vpn.example.org", "", ("@ops@vpn.example.org", "")),
    ("peer.example.org", "", ("@peer.example.org", "")),
    ("198.51.100.7", "vpn.example.org", ("@198.51.100.7", "@vpn.example.org")),
    ("peer.example.org", "203.0.113.1", ("@peer.example.org", "@203.0.113.1")),
    ("203.0.113.2", "203.0.113.1", ("203.0.113.2", "203.0.113.1")),
    (LONG, "", ("@" + LONG, "")),
])
def test_ids_as_neutron_sends_them_are_accepted(peer_id, local_id, sent):
    doc = agent_payload(peer_id, local_id)
    [c] = doc["ipsec_site_connections"]
    assert (c["peer_id"], c["local_id"]) == sent  # Neutron's '@', as described
    connection, _ = accepted(doc)
    assert (connection.peer_id, connection.local_id) == sent


@pytest.mark.parametrize("peer_id, local_id, key", [
    ("%any", "", "peer_id"), ("*", "", "peer_id"), ("*.example.org", "", "peer_id"),
    ("0.0.0.0", "vpn.example.org", "peer_id"), ("::", "vpn.example.org", "peer_id"),
    # (A peer_id with a '/' never comes: netaddr raises ValueError there,
    # which make_vpnservice_dict does not catch.)
    ("2001:db8::1-2001:db8::9", "", "peer_id"), ("198.51.100.1-198.51.100.9", "", "peer_id"),
    ("", "", "peer_id"), (LONG + "x", "", "peer_id"),
    ("peer.example.org", "%any", "local_id"), ("peer.example.org", "0.0.0.0", "local_id"),
])
def test_ids_meaning_any_peer_are_refused_as_neutron_sends_them(peer_id, local_id, key):
    p = parsed(agent_payload(peer_id, local_id))
    assert p.service is not None and p.service.connections == ()
    [error] = p.broken["c1"]
    assert error.path == f"{PATH}.{key}", error
    assert "vocabulary-psk-5d1c" not in str(error)
