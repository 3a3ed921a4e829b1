"""`vpnd reload` (what systemctl reload runs) says when the resync it
waited for did not work, and why."""
from __future__ import annotations

import secrets

import pytest

from conftest import require_system
from lab.factory import service_doc
from lab.testbed import wait_for


@pytest.mark.fault
def test_reload_exits_non_zero_with_the_reason_when_the_resync_failed(vpnd_factory):
    require_system()
    v = vpnd_factory("r")
    missing = f"vt-none-{secrets.token_hex(3)}"  # a namespace nobody made
    v.write("svc.json", service_doc("svc-r", namespace=missing))
    v.start()
    wait_for(lambda: v.status_document(), 30, what="a first status")
    result = v.cli("reload")
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"vpnd: reload: netns/{missing}: namespace {missing} does not exist" in result.stderr
    v.remove("svc.json")
    wait_for(lambda: not v.status_document()["services"], 15, what="the file gone")
    result = v.cli("reload")
    assert result.returncode == 0, result.stdout + result.stderr
