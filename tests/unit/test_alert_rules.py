"""The alert rules and the dashboard in infra/: `promtool check rules` and `promtool test
rules` (alerts_test.yml pins what each alert does), and every metric they name is one the
code exports, so renaming a metric cannot silently blind an alert."""

from __future__ import annotations

import datetime as dt
import json
import re
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

PROMETHEUS = Path(__file__).resolve().parents[2] / "infra" / "prometheus"
DASHBOARD = Path(__file__).resolve().parents[2] / "infra" / "grafana" / "viewcount.json"
METRIC = re.compile(r"\bviewcount_[a-z0-9_]+")


@pytest.fixture(scope="module")
def promtool() -> str:
    from infra.artifacts import PROMTOOL
    from settings.environment import Settings

    return str(PROMTOOL.ensure(Settings.from_env().cache_dir))  # built once by `make test`


def run(promtool: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([promtool, *args], cwd=PROMETHEUS, capture_output=True, text=True, timeout=120)


def test_the_rules_are_valid(promtool):
    checked = run(promtool, "check", "rules", "alerts.yml")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS" in checked.stdout


def test_each_alert_fires_when_and_only_when_its_test_says(promtool):
    tested = run(promtool, "test", "rules", "alerts_test.yml")
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_every_alert_has_a_test():
    rules = yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())
    alerts = {rule["alert"] for group in rules["groups"] for rule in group["rules"] if "alert" in rule}
    tests = yaml.safe_load((PROMETHEUS / "alerts_test.yml").read_text())["tests"]
    tested = {case["alertname"] for test in tests for case in test.get("alert_rule_test", [])
              if case.get("exp_alerts")}
    assert alerts == tested


def exported_metric_names() -> set[str]:
    """Sample names of the speed jobs' and the API's metrics, as Prometheus scrapes them."""
    from prometheus_client import REGISTRY

    import speed_layer.progress  # noqa: F401 - registers the speed jobs' metrics
    from serving.cache import LruCache
    from serving.metrics import ApiMetrics
    from serving.store import NightlyStatus
    from storage.restatements import Counts

    api = ApiMetrics()
    api.watch_caches({"final": LruCache(10)})
    api.watch_nightly(SimpleNamespace(nightly=NightlyStatus(dt.date(2026, 12, 1), dt.date(2026, 12, 1), True)))
    api.watch_restatements(SimpleNamespace(counts=Counts({"pending": 1, "failed": 0}, 2), read_ok=True,
                                           read_at=1.0))
    api.watch_overrides(SimpleNamespace(counts={"unreconciled": 0, "loosened": 1}, read_ok=True))
    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum"), "gauge": ("",)}
    names = set()
    for registry in (REGISTRY, api.registry):
        for family in registry.collect():
            names.update(family.name + suffix for suffix in suffixes.get(family.type, ("",)))
    return {name for name in names if name.startswith("viewcount_")}


def test_the_rules_and_the_dashboard_name_only_metrics_the_code_exports():
    exported = exported_metric_names()
    dashboard = json.loads(DASHBOARD.read_text())
    named = {
        "alerts.yml": set(METRIC.findall((PROMETHEUS / "alerts.yml").read_text())),
        "viewcount.json": {name for panel in dashboard["panels"] for target in panel["targets"]
                           for name in METRIC.findall(target["expr"])},
    }
    for source, names in named.items():
        assert names, source
        assert names <= exported, (source, sorted(names - exported))
