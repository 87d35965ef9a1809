"""The Grafana dashboard beside the compose file shows only metrics the code exports, and all of ours."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from polyswarmclient import metrics
from polyswarmclient.metrics import Health
from polyswarmclient.telemetry.exporter import PrometheusSink

DASHBOARD = Path(__file__).resolve().parents[2] / "deploy" / "grafana-dashboard.json"
METRIC = re.compile(r"\b((?:polyswarm|process|python)_[a-z0-9_]+)")


def exported() -> set[str]:
    """Every metric name a scrape of /metrics declares (its # TYPE lines), with the process collectors'."""
    text = PrometheusSink().render(Health()).decode()
    return {line.split()[2] for line in text.splitlines() if line.startswith("# TYPE ")}


def queries() -> list[tuple[str, str]]:
    """(panel title, query) for every panel target and every templating query."""
    dashboard: dict[str, Any] = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    found = [
        (panel["title"], target["expr"])
        for panel in dashboard["panels"]
        if panel["type"] != "row"
        for target in panel["targets"]
    ]
    found += [(f"variable {v['name']}", v["definition"]) for v in dashboard["templating"]["list"]]
    return found


def named(query: str) -> set[str]:
    return {re.sub(r"_(bucket|sum|count)$", "", name) for name in METRIC.findall(query)}


def test_every_query_names_a_metric_the_code_exports() -> None:
    """A renamed metric would leave a panel silently empty: each query must name exported metrics only."""
    known = exported()
    for title, query in queries():
        names = named(query)
        assert names, f"panel {title!r} queries no polyswarm-kit metric: {query}"
        unknown = names - known
        assert not unknown, f"panel {title!r} queries {sorted(unknown)}, which /metrics does not export"


def test_every_metric_of_ours_is_on_the_dashboard() -> None:
    shown = set().union(*(named(query) for _, query in queries()))
    missing = {instrument.spec.name for instrument in metrics.INSTRUMENTS} - shown
    assert not missing, f"no panel shows {sorted(missing)}"


def test_the_dashboard_is_importable_with_any_prometheus_data_source() -> None:
    """Grafana's import asks for the data source (DS_PROMETHEUS) instead of expecting one by name."""
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    assert [i["name"] for i in dashboard["__inputs"]] == ["DS_PROMETHEUS"]
    for panel in dashboard["panels"]:
        if panel["type"] != "row":
            assert panel["datasource"]["uid"] == "${DS_PROMETHEUS}", panel["title"]
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
