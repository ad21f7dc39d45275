"""The PromQL of the chart's Grafana dashboard, as Prometheus would receive it: every panel
target and every template variable's query, with Grafana's variables substituted."""

from __future__ import annotations

import json
import re

from tugboat.dev.tools import repo_root

DASHBOARD = repo_root() / "charts" / "tugboat" / "files" / "dashboard.json"
# Grafana's own interval variables, at values a few-minute-old Prometheus has data for.
BUILTINS = {"__rate_interval": "1m", "__range": "1h"}
_LABEL_VALUES = re.compile(r"^label_values\((?P<selector>.+),\s*(?P<label>\w+)\)$")


def dashboard() -> dict:
    return json.loads(DASHBOARD.read_text())


def substitute(expr: str, values: dict[str, str]) -> str:
    merged = {**BUILTINS, **values}
    out = re.sub(r"\$\{?(\w+)\}?", lambda m: merged[m.group(1)], expr)
    assert "$" not in out, out
    return out


def queries(dash: dict, values: dict[str, str]) -> list[tuple[str, str]]:
    """(where, PromQL) for every query the dashboard sends; a variable's label_values(selector,
    label) is asked as the series query Grafana runs for it (count by label)."""
    found = [(f"{p['title']} [{t['refId']}]", substitute(t["expr"], values))
             for p in dash["panels"] for t in p.get("targets", [])]
    for var in dash["templating"]["list"]:
        if var["type"] != "query":
            continue
        m = _LABEL_VALUES.match(var["query"]["query"])
        assert m, f"variable {var['name']}: only label_values(selector, label) is understood"
        found.append((f"variable {var['name']}", f"count by ({m['label']}) ({m['selector']})"))
    return found
