#!/usr/bin/env bash
# Checks the operator files in ops/: the Prometheus rules load (`promtool check rules`), their
# unit tests pass (`promtool test rules`), and the Grafana dashboard is valid JSON with the
# variables it needs. Needs promtool (Debian package `prometheus`) and python3.
#
#   bash ops/check.sh
set -euo pipefail
cd "$(dirname "$0")"

promtool check rules prometheus/pacer-rules.yml
(cd prometheus && promtool test rules pacer-rules.test.yml)

python3 - grafana/pacer.json <<'PY'
import json, sys
path = sys.argv[1]
with open(path) as f:
    dashboard = json.load(f)
variables = {v["name"]: v for v in dashboard["templating"]["list"]}
assert variables["datasource"]["type"] == "datasource", "no datasource variable"
assert "label_values(" in variables["namespace"]["definition"], "no namespace variable"
panels = [p for p in dashboard["panels"] if p["type"] != "row"]
assert panels, "no panels"
ids = [p["id"] for p in dashboard["panels"]]
assert len(ids) == len(set(ids)), "duplicate panel ids"
for panel in panels:
    assert panel["targets"], f"panel {panel['title']!r} has no query"
    for target in panel["targets"]:
        assert target["datasource"]["uid"] == "${datasource}", f"panel {panel['title']!r} pins a data source"
print(f"{path}: valid JSON, {len(panels)} panels, variables {', '.join(variables)}")
PY
