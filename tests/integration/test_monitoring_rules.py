"""The monitoring role's alert rules are valid PromQL with v1 metric names, and a real Prometheus
evaluates them against a real Karpenter's /metrics (sandbox Prometheus from Debian's package)."""

import json
import os
import subprocess
import urllib.parse
import urllib.request

import yaml
from ansible_collections.karpenter_eks.platform.plugins.module_utils.karpenter.lint import find_obsolete_metrics

HERE = os.path.dirname(os.path.abspath(__file__))


def get(url):
    with urllib.request.urlopen(url, timeout=5) as r:
        return json.load(r)


def test_alert_rules_check_and_evaluate_on_real_metrics(sandbox, tmp_path, uid):
    rendered = tmp_path / "rule.yml"
    sandbox.playbook(os.path.join(HERE, "playbooks", "render_monitoring_rules.yml"), extra_vars={"dest": str(rendered)})
    obj = yaml.safe_load(rendered.read_text())
    assert obj["kind"] == "PrometheusRule"
    groups = obj["spec"]["groups"]
    text = json.dumps(groups)
    assert find_obsolete_metrics(text) == [], "pre-v1 Karpenter metric names in the alerts"

    rules_file = tmp_path / "rules.yml"
    rules_file.write_text(yaml.safe_dump({"groups": groups}))
    promtool = os.path.join(sandbox.env["SANDBOX_BIN"], "promtool")
    assert os.path.exists(promtool), "promtool missing: sandbox/build.sh fetches Debian's prometheus package"
    res = subprocess.run([promtool, "check", "rules", str(rules_file)], capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr

    # load them into the sandbox Prometheus that scrapes the real Karpenter, and let it evaluate them
    prom = sandbox.env["PROMETHEUS_URL"]
    dest = os.path.join(sandbox.env["SANDBOX_STATE"], "prometheus-rules", f"test-{uid}.yml")
    try:
        with open(dest, "w") as f:
            f.write(yaml.safe_dump({"groups": [dict(g, name=f"{g['name']}-{uid}") for g in groups]}))
        urllib.request.urlopen(urllib.request.Request(prom + "/-/reload", method="POST"), timeout=5).read()

        def evaluated():
            loaded = [g for g in get(prom + "/api/v1/rules")["data"]["groups"] if g["name"].endswith(uid)]
            rules = [r for g in loaded for r in g["rules"]]
            done = rules and all(r.get("lastEvaluation", "").startswith("20") for r in rules)
            return rules if done else None

        rules = sandbox.wait_until("Prometheus evaluated the alert rules", evaluated, 60)
        assert len(rules) == sum(len(g["rules"]) for g in groups)
        bad = [(r["name"], r.get("lastError")) for r in rules if r["health"] != "ok"]
        assert bad == []
        # the Karpenter series the alerts are about are really scraped
        up = get(prom + "/api/v1/query?query=" + urllib.parse.quote('up{job="karpenter"}'))["data"]["result"]
        assert up and up[0]["value"][1] == "1"
    finally:
        os.unlink(dest)
        urllib.request.urlopen(urllib.request.Request(prom + "/-/reload", method="POST"), timeout=5).read()
