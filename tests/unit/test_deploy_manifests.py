"""The Kubernetes manifests under deploy/kubernetes/ validate against the
API's schemas (kubernetes-validate, strict: an unknown field is an error),
and carry what vpnd needs of a pod; the DaemonSet's resources and
systemd/vpnd.service's MemoryMax follow from the measured figures in
deploy/sizing.json."""
from __future__ import annotations

import copy
import importlib.util
import re
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


# --- sizing: the limits follow from the measured figures ---------------------

ROOT = Path(__file__).resolve().parents[2]
SIZING_PY = ROOT / "deploy" / "sizing.py"
UNIT = ROOT / "systemd" / "vpnd.service"


def sizing_module():
    spec = importlib.util.spec_from_file_location("deploy_sizing", SIZING_PY)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def k8s_mib(quantity: str) -> float:
    """A Kubernetes memory quantity in MiB."""
    m = re.fullmatch(r"(\d+(?:\.\d+)?)(Ki|Mi|Gi|Ti|k|M|G|T)?", quantity)
    assert m, quantity
    scale = {"Ki": 2 ** 10, "Mi": 2 ** 20, "Gi": 2 ** 30, "Ti": 2 ** 40, "k": 1e3, "M": 1e6,
             "G": 1e9, "T": 1e12, None: 1}[m.group(2)]
    return float(m.group(1)) * scale / 2 ** 20


def systemd_mib(value: str) -> float:
    """A systemd memory size (K, M, G, T are 1024-based) in MiB."""
    m = re.fullmatch(r"(\d+(?:\.\d+)?)([KMGT])?", value)
    assert m, f"MemoryMax={value}: not an absolute size"
    return float(m.group(1)) * 1024 ** " KMGT".index(m.group(2) or " ") / 2 ** 20


def unit_service(text: str) -> dict[str, str]:
    out, section = {}, None
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("["):
            section = line
        elif section == "[Service]" and "=" in line and not line.startswith("#"):
            key, value = line.split("=", 1)
            out[key.strip()] = value.strip()
    return out


def daemonset_resources(doc=None) -> dict:
    if doc is None:
        [doc] = [d for n, d in documents() if n == "daemonset.yaml"]
    [container] = doc["spec"]["template"]["spec"]["containers"]
    return container["resources"]


def stated_node():
    sizing = sizing_module()
    figures = sizing.load()
    node = figures["node"]
    need = sizing.need_mib(figures, node["routers"], node["connections"], node["metrics"])
    return figures, need, need * figures["headroom"]["value"]


def check_resources(resources: dict) -> None:
    figures, need, limit = stated_node()
    request = k8s_mib(resources["requests"]["memory"])
    ceiling = k8s_mib(resources["limits"]["memory"])
    assert need <= request <= ceiling
    assert limit <= ceiling <= 2 * need, (ceiling, limit, need)
    assert "cpu" not in resources.get("limits", {})  # CFS throttling would slow bursts
    cpu = resources["requests"]["cpu"]
    assert cpu == f"{figures['cpu_request']['value']}m"


def check_unit(text: str) -> None:
    _, need, limit = stated_node()
    service = unit_service(text)
    assert service.get("KillMode") == "process"  # the charons stay in this cgroup
    assert "MemoryMax" in service, "vpnd.service sets no MemoryMax="
    ceiling = systemd_mib(service["MemoryMax"])
    assert limit <= ceiling <= 2 * need, (ceiling, limit, need)
    if "MemoryHigh" in service:
        assert need <= systemd_mib(service["MemoryHigh"]) <= ceiling


def test_the_sizing_figures_are_consistent():
    figures = sizing_module().load()
    node = figures["node"]
    assert node["routers"] > 0 and node["connections"] > 0 and isinstance(node["metrics"], bool)
    assert node["about"]
    assert 1.0 < figures["headroom"]["value"] <= 2.0 and figures["headroom"]["about"]
    units = {"KiB", "MiB", "%", "s"}
    for name, figure in figures["figures"].items():
        assert figure["unit"] in units, name
        assert isinstance(figure["value"], (int, float)) and figure["value"] > 0, name
        assert re.search(r"(bench|probe) 2026-\d\d-\d\d", figure["source"]), name
    f = figures["figures"]
    memory = [n for n, v in f.items() if v["unit"] in ("KiB", "MiB")]
    assert {"vpnd_base", "vpnd_per_connection", "charon_pss_all_routers", "charon_pss_one_router",
            "charon_per_connection", "metrics_added_1000", "metrics_added_10000"} <= set(memory)
    # Per connection in KiB, per process or node in MiB; ranges the bench saw.
    assert all(f[n]["unit"] == "KiB" for n in memory if n.endswith("_per_connection"))
    assert 1 <= f["vpnd_per_connection"]["value"] <= 50
    assert 1 <= f["charon_per_connection"]["value"] <= 50
    assert f["metrics_added_1000"]["value"] < f["metrics_added_10000"]["value"]
    assert f["charon_pss_one_router"]["routers"] == 1 < f["charon_pss_all_routers"]["routers"]
    # A charon's share of 500 is less than one charon alone, and more than nothing.
    per = f["charon_pss_all_routers"]["value"] / f["charon_pss_all_routers"]["routers"]
    assert 0 < per < f["charon_pss_one_router"]["value"]
    assert figures["cpu_request"]["unit"] == "m" and figures["cpu_request"]["value"] > 0


def test_the_need_grows_with_the_node_and_matches_the_bench():
    sizing = sizing_module()
    figures = sizing.load()
    need = sizing.need_mib
    assert need(figures, 0, 0, False) == pytest.approx(figures["figures"]["vpnd_base"]["value"])
    assert need(figures, 1, 10, True) < need(figures, 2, 10, True) < need(figures, 2, 20, True)
    assert need(figures, 10, 1000, False) < need(figures, 10, 1000, True)
    # The charon part for the bench's 500 routers is the bench's own sum.
    assert sizing.charons_mib(figures["figures"], 500) == pytest.approx(786.1)
    # vpnd at 10,000 as the bench measured it (63.0 MiB, 2026-12-07), within 5 %.
    f = figures["figures"]
    vpnd = sizing.mib(f["vpnd_base"]) + sizing.mib(f["vpnd_per_connection"]) * 10000
    assert vpnd == pytest.approx(63.0, rel=0.05)


def test_the_daemonset_resources_follow_from_the_figures():
    check_resources(daemonset_resources())


def test_the_systemd_memory_max_follows_from_the_figures():
    check_unit(UNIT.read_text())


def test_the_old_limits_would_fail():
    """The limits before sizing (256Mi, none in the unit) would OOM-kill the
    stated node; so would one drifting above twice what it needs."""
    [daemonset] = [d for n, d in documents() if n == "daemonset.yaml"]
    for requests, limits in (({"cpu": "50m", "memory": "64Mi"}, {"memory": "256Mi"}),
                             (None, {"memory": "8Gi"})):
        broken = copy.deepcopy(daemonset)
        res = daemonset_resources(broken)
        res["requests"] = requests or res["requests"]
        res["limits"] = limits
        with pytest.raises(AssertionError):
            check_resources(res)
    text = UNIT.read_text()
    for line in ("", "MemoryMax=256M", "MemoryMax=8G", "MemoryMax=50%"):
        with pytest.raises(AssertionError):
            check_unit(re.sub(r"^MemoryMax=.*$", line, text, flags=re.M))


def test_the_docs_state_the_shipped_sizing():
    page = (ROOT / "docs" / "kubernetes.md").read_text()
    section = page[page.index("## Sizing a node"):]
    section = " ".join(section.split("\n#")[0].split())
    resources = daemonset_resources()
    node = sizing_module().load()["node"]
    assert f"memory: {resources['requests']['memory']}" in section
    assert f"memory: {resources['limits']['memory']}" in section
    assert f"MemoryMax={unit_service(UNIT.read_text())['MemoryMax']}" in section
    assert f"{node['routers']} routers, {node['connections']:,} connections" in section
