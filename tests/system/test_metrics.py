"""Prometheus metrics, proven with the real tools: a real Prometheus
server (Debian's prometheus package) scrapes vpnd and its HTTP API answers
vpnd_connection_up; promtool accepts the exposition and the alerting rules
(deploy/prometheus/), and runs the rules' unit tests."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
import time
import urllib.parse
from pathlib import Path

import pytest

from conftest import connection, require_system, service, wait_converged
from lab.testbed import ip, kill_namespace_processes, wait_for

PSK = "metrics-psk-8d3"
ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy" / "prometheus" / "vpnd-alerts.yml"
RULE_TESTS = ROOT / "deploy" / "prometheus" / "vpnd-alerts.test.yml"


def promtool(*args, stdin=None):
    if not shutil.which("promtool"):
        pytest.fail("promtool missing (apt: prometheus; scripts/install-packages installs it)")
    return subprocess.run(["promtool", *args], input=stdin, capture_output=True, text=True,
                          timeout=120)


@pytest.fixture
def monitor(lab, tmp_path):
    """A network namespace of the test's own where vpnd (a) serves its
    metrics on loopback and a real Prometheus server scrapes them."""
    ns = f"{lab.tag}-mon"
    ip("netns", "add", ns)
    ip("-n", ns, "link", "set", "lo", "up")
    procs = []
    try:
        yield ns, procs
    finally:
        for p in procs:
            p.terminate()
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()
        kill_namespace_processes(ns)
        ip("netns", "del", ns, check=False)


def query(ns: str, expr: str):
    """Prometheus's instant query API, asked from inside the namespace."""
    url = "http://127.0.0.1:19090/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    out = subprocess.run(["ip", "netns", "exec", ns, sys.executable, "-c",
                          "import sys, urllib.request;"
                          "print(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode())",
                          url], capture_output=True, text=True, timeout=30)
    if out.returncode:
        return None
    result = json.loads(out.stdout)["data"]["result"]
    return [float(r["value"][1]) for r in result]


def test_a_real_prometheus_scrapes_connection_up_and_down(lab, vpnd_factory, monitor, tmp_path,
                                                          figure):
    require_system()
    ns, procs = monitor
    textfile = tmp_path / "vpnd.prom"
    a = vpnd_factory("a", metrics={"listen": "127.0.0.1:19576", "textfile": str(textfile)})
    b = vpnd_factory("b")
    a.write("svc.json", service("svc-a", lab.a, [connection("c1", lab.a, lab.b, PSK)]))
    b.write("svc.json", service("svc-b", lab.b, [connection("c1", lab.b, lab.a, PSK)]))
    a.start(wrap=("ip", "netns", "exec", ns))
    b.start()
    a.wait_conn("svc-a", "c1"), b.wait_conn("svc-b", "c1")
    wait_converged([(a, lab.a.gw), (b, lab.b.gw)], ["c1"])

    (tmp_path / "prometheus.yml").write_text(textwrap.dedent("""\
        global: {scrape_interval: 1s, evaluation_interval: 1s}
        scrape_configs:
          - job_name: vpnd
            static_configs: [{targets: ["127.0.0.1:19576"]}]
        """))
    procs.append(subprocess.Popen(
        ["ip", "netns", "exec", ns, "prometheus",
         f"--config.file={tmp_path / 'prometheus.yml'}",
         f"--storage.tsdb.path={tmp_path / 'tsdb'}", "--web.listen-address=127.0.0.1:19090"],
        stdout=subprocess.DEVNULL, stderr=open(tmp_path / "prometheus.log", "wb")))
    t0 = time.monotonic()
    wait_for(lambda: query(ns, 'vpnd_connection_up{connection="c1"}') == [1.0], 60,
             interval=0.5, what="vpnd_connection_up 1 in Prometheus")
    figure("Prometheus: vpnd_connection_up 1 queried after (s, from its start)",
           f"{time.monotonic() - t0:.1f}")
    assert query(ns, 'vpnd_charon_up{namespace="%s"}' % lab.a.gw) == [1.0]
    assert query(ns, "vpnd_build_info") == [1.0]

    # The peer goes away: the series says 0.
    b.stop()
    b.cleanup()
    a.wait_conn("svc-a", "c1", "DOWN", timeout=60)
    wait_for(lambda: query(ns, 'vpnd_connection_up{connection="c1"}') == [0.0], 30,
             interval=0.5, what="vpnd_connection_up 0 in Prometheus")

    # The exposition passes promtool's lint, from the textfile as scraped.
    exposition = textfile.read_text()
    assert 'vpnd_connection_up{connection="c1"' in exposition
    check = promtool("check", "metrics", stdin=exposition)
    assert check.returncode == 0, check.stdout + check.stderr

    # A removed connection leaves no series behind.
    a.remove("svc.json")
    wait_for(lambda: 'connection="c1"' not in textfile.read_text(), 30,
             what="c1's series gone")


def test_the_alerting_rules_pass_promtool_and_their_tests():
    check = promtool("check", "rules", str(RULES))
    assert check.returncode == 0, check.stdout + check.stderr
    tested = promtool("test", "rules", str(RULE_TESTS))
    assert tested.returncode == 0, tested.stdout + tested.stderr
