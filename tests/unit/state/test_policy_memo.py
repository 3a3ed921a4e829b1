"""Policies that checked clean are not checked again, and nothing else
is taken from that memo: a problem is found in every connection that has
it, and values equal in Python but not to the checks are checked anew."""
import pytest

from vpnd.base.model import Lifetime
from vpnd.state import policy_checks
from vpnd.state.checker import Checker
from vpnd.state.policy_checks import policy


@pytest.fixture(autouse=True)
def empty_memo():
    policy_checks._CHECKED.clear()
    yield
    policy_checks._CHECKED.clear()


def checked(d, ike=True):
    c = Checker("/etc/vpnd/state.d/s.json")
    return policy(c, "$.ipsec_site_connections[0].ikepolicy", d, ike), c


def test_a_clean_policy_is_one_object_and_checked_once():
    d = {"auth_algorithm": "sha256", "lifetime": {"units": "seconds", "value": 7200}}
    first, c1 = checked(d)
    assert first.lifetime == Lifetime("seconds", 7200) and not c1.errors
    assert len(policy_checks._CHECKED) == 1
    again, c2 = checked(dict(d, lifetime=dict(d["lifetime"])))
    assert again is first and not c2.errors and not c2.warnings


@pytest.mark.parametrize("value", [7200.0, [7200], {"v": 7200}])
def test_a_value_python_finds_equal_is_still_checked_as_itself(value):
    # 7200.0 == 7200 and hash(7200.0) == hash(7200): a key of values alone
    # would hand back the policy of 7200 s.
    assert checked({"lifetime": {"units": "seconds", "value": 7200}})[0] is not None
    result, c = checked({"lifetime": {"units": "seconds", "value": value}})
    assert result is None
    assert [e.path for e in c.errors] == ["$.ipsec_site_connections[0].ikepolicy.lifetime.value"]


def test_the_key_tells_true_from_1():
    assert policy_checks._frozen({"v": 1}) != policy_checks._frozen({"v": True})
    assert policy_checks._frozen({"v": 1}) == policy_checks._frozen({"v": 1})
    assert policy_checks._frozen({"v": 1.0}) is None


def test_problems_and_warnings_come_with_every_connection_that_has_them():
    for _ in range(3):
        result, c = checked({"lifetime_value": 59})
        assert result is None and "must be at least 60" in c.errors[0].message
    for _ in range(3):
        result, c = checked({"auth_algorithm": "sha1"})
        assert result is not None and "deprecated" in c.warnings[0].message
    assert not policy_checks._CHECKED  # neither was kept


def test_ike_and_ipsec_policies_alike_in_their_values_are_two_entries():
    d = {"auth_algorithm": "sha256"}
    ike, _ = checked(d, ike=True)
    ipsec, _ = checked(d, ike=False)
    assert type(ike).__name__ == "IkePolicy" and type(ipsec).__name__ == "IpsecPolicy"


def test_the_memo_is_bounded_and_large_objects_stay_out():
    for value in range(60, 60 + 3 * policy_checks._CHECKED_MAX):
        checked({"lifetime_value": value})
    assert 0 < len(policy_checks._CHECKED) <= policy_checks._CHECKED_MAX
    policy_checks._CHECKED.clear()
    checked({"description": "x" * (policy_checks._KEY_TEXT_MAX + 1)})
    checked({f"extra_{i}": i for i in range(policy_checks._KEY_ITEMS_MAX + 1)})
    assert not policy_checks._CHECKED
