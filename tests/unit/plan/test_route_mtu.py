"""A connection's mtu as route MTU steps (mtu.py, pure)."""
from __future__ import annotations

from types import SimpleNamespace

from lab.factory import connection_doc, parsed, service_doc
from vpnd.plan.mtu import Route, plan


def up(mtu):
    conn = parsed(service_doc(conns=[connection_doc(mtu=mtu)])).connections[0]
    return SimpleNamespace(name=conn.id, service_id="svc", model=conn)


def route(mtu=None, device=1400):
    return Route("198.51.100.0/24", mtu, device)


def test_an_mtu_below_the_device_is_put_on_the_route():
    steps, standing = plan("ns", [up(1300)], [route()])
    assert [a.describe() for s in steps for a in s.actions] == [
        "set route mtu 1300 for 198.51.100.0/24"]
    assert standing == {"c1": "applied"}
    assert plan("ns", [up(1300)], [route(1300)])[0] == ()  # already there


def test_an_mtu_raised_to_the_device_mtu_takes_the_lower_route_mtu_off():
    steps, standing = plan("ns", [up(1500)], [route(1300)])
    assert [a.describe() for s in steps for a in s.actions] == [
        "remove route mtu 1300 for 198.51.100.0/24"]
    assert [a.mtu for s in steps for a in s.actions] == [0]
    assert standing == {"c1": "above the device MTU"}
    assert plan("ns", [up(1500)], [route(None)])[0] == ()  # nothing to take off
