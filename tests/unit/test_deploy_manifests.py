"""The Kubernetes manifests under deploy/kubernetes/ validate against the
API's schemas (kubernetes-validate, strict: an unknown field is an error),
and carry what vpnd needs of a pod."""
from __future__ import annotations

import copy
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "kubernetes"
VERSION = "1.29"


def documents():
    return [(path.name, doc) for path in sorted(DEPLOY.glob("*.yaml"))
            for doc in yaml.safe_load_all(path.read_text()) if doc]


@pytest.mark.parametrize("name, doc", documents(), ids=lambda v: v if isinstance(v, str) else "")
def test_each_manifest_validates(name, doc):
    kubernetes_validate.validate(doc, VERSION, strict=True)


def test_the_validator_refuses_what_kubernetes_would():
    [daemonset] = [d for n, d in documents() if n == "daemonset.yaml"]
    broken = copy.deepcopy(daemonset)
    broken["spec"]["template"]["spec"]["hostNetwrk"] = True
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, VERSION, strict=True)


def test_the_daemonset_has_what_vpnd_needs_of_a_pod():
    [daemonset] = [d for n, d in documents() if n == "daemonset.yaml"]
    pod = daemonset["spec"]["template"]["spec"]
    [container] = pod["containers"]
    assert pod["hostNetwork"] is True
    assert {"NET_ADMIN", "SYS_ADMIN"} <= set(container["securityContext"]["capabilities"]["add"])
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    assert mounts["/run/netns"]["mountPropagation"] == "Bidirectional"
    assert container["securityContext"]["privileged"] is True  # Bidirectional needs it
    volumes = {v["name"]: v for v in pod["volumes"]}
    state = volumes[mounts["/etc/vpnd/state.d"]["name"]]
    assert state["secret"]["defaultMode"] == 0o400  # who may declare: owner-only
    assert container["readinessProbe"]["exec"]["command"][-1] == "health"
