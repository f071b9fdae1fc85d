#!/usr/bin/env bash
# Checks everything in deploy/ with the real tools, offline:
#   promtool check config / check rules / test rules, docker-compose config,
#   and that the Grafana dashboard and provisioning files parse.
# The live checks (promtool check metrics on a running service's /metrics,
# every metric named by the rules and the dashboard present in it) are the
# test crates/ngx-agent/tests/http_metrics.rs, run by `cargo test`.
# No Docker engine is needed: the image itself is checked by review.
set -euo pipefail
cd "$(dirname "$0")/../deploy"

need() {
  command -v "$1" >/dev/null || { echo "check-deploy: '$1' not found (apt-get install -y $2)" >&2; exit 1; }
}
need promtool prometheus
need docker-compose docker-compose
need python3 python3

echo "== promtool check config";  promtool check config prometheus.yml
echo "== promtool check rules";   promtool check rules prometheus-rules.yml
echo "== promtool test rules";    promtool test rules prometheus-rules.test.yml
echo "== docker-compose config";  docker-compose -f docker-compose.yml config -q && echo "  SUCCESS"
echo "== grafana files"
python3 - <<'PY'
import json, pathlib
for p in sorted(pathlib.Path("grafana/dashboards").glob("*.json")):
    d = json.loads(p.read_text())
    assert d.get("panels"), f"{p}: no panels"
    for panel in d["panels"]:
        for t in panel.get("targets", []):
            assert t.get("expr"), f"{p}: panel {panel.get('title')!r} has a target without expr"
    print(f"  {p}: {len(d['panels'])} panels")
for p in sorted(pathlib.Path("grafana/provisioning").rglob("*.yml")):
    text = p.read_text()
    assert "apiVersion: 1" in text, f"{p}: not a provisioning file"
    print(f"  {p}: ok")
PY
echo "== deploy: all checks passed"
