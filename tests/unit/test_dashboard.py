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
    found += [(f"variable {v['name']}", v["definition"]) for v in dashboard["templating"]["list"] if "definition" in v]
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


def test_the_dashboard_works_imported_or_provisioned_with_any_prometheus_data_source() -> None:
    """Every panel asks the DS_PROMETHEUS data-source variable, so Grafana's import and compose's
    provisioning both work whatever the data source is called."""
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    [variable] = [v for v in dashboard["templating"]["list"] if v["name"] == "DS_PROMETHEUS"]
    assert (variable["type"], variable["query"]) == ("datasource", "prometheus")
    for panel in dashboard["panels"]:
        if panel["type"] != "row":
            assert panel["datasource"]["uid"] == "${DS_PROMETHEUS}", panel["title"]
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))


def test_prometheus_in_the_compose_file_scrapes_every_service_of_the_image() -> None:
    """The monitoring profile's Prometheus has a job for each service that serves /metrics."""
    import yaml

    deploy = DASHBOARD.parent
    services = yaml.safe_load((deploy / "compose.yaml").read_text(encoding="utf-8"))["services"]
    ours = {name for name, s in services.items() if "METRICS_ADDR" in (s.get("environment") or {})}
    config = yaml.safe_load((deploy / "prometheus.yml").read_text(encoding="utf-8"))
    jobs = {job["job_name"] for job in config["scrape_configs"]}
    assert ours and ours == jobs, (ours, jobs)
    assert any(v.startswith("./grafana-dashboard.json:") for v in services["grafana"]["volumes"])
