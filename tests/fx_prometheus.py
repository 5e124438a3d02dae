"""A real Prometheus (Debian's 2.42) for tests, on a free loopback port with its own temp
config and storage, a short scrape/evaluation interval, stopped at the end.

Use the ``prometheus`` fixture (a factory, function scope)::

    def test_x(prometheus, exporter):
        base = exporter()                                   # http://127.0.0.1:PORT
        prom = prometheus(shipped_config({"sscp-ops": [base]}))
        prom.wait_for('up{job="sscp-ops"} == 1')
        prom.query("instance:node_cpu_utilisation:rate5m")

or, for a module- or session-scoped server, ``run_prometheus(config, workdir)`` as a context
manager. ``shipped_config`` starts from the shipped deploy/prometheus/prometheus.yml (its rules,
its job names) and points the jobs at the given targets; ``scrape_config`` builds a bare config.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests
import yaml
from helpers import ROOT, free_port, require_binary, running

SHIPPED_CONFIG = ROOT / "deploy" / "prometheus" / "prometheus.yml"
RULES = ROOT / "rules"


class QueryError(AssertionError):
    """Prometheus rejected a query (bad syntax, unknown function, ...)."""


@dataclass(frozen=True)
class Prometheus:
    url: str  # base URL, no trailing slash
    config_path: Path

    def api(self, path: str, **params: str) -> dict:
        resp = requests.get(f"{self.url}/api/v1/{path}", params=params, timeout=30)
        body = resp.json()
        if body.get("status") != "success":
            raise QueryError(f"{path} {params}: {body.get('errorType')}: {body.get('error')}")
        return body["data"]

    def query(self, expr: str, at: float | None = None) -> list[dict]:
        """An instant query; the result list (vector) or [scalar/string] wrapped in a list."""
        params = {"query": expr}
        if at is not None:
            params["time"] = str(at)
        data = self.api("query", **params)
        return data["result"] if data["resultType"] in ("vector", "matrix") else [data["result"]]

    def query_range(self, expr: str, seconds: float = 300, step: str = "15s") -> list[dict]:
        end = time.time()
        return self.api(
            "query_range", query=expr, start=str(end - seconds), end=str(end), step=step
        )["result"]

    def wait_for(self, expr: str, timeout: float = 60.0) -> list[dict]:
        """Poll ``expr`` until it returns a non-empty result; raise TimeoutError otherwise."""
        deadline = time.monotonic() + timeout
        while True:
            result = self.query(expr)
            if result:
                return result
            if time.monotonic() > deadline:
                raise TimeoutError(f"no result for {expr!r} within {timeout}s")
            time.sleep(0.5)

    def targets(self) -> list[dict]:
        return self.api("targets")["activeTargets"]

    def rule_groups(self) -> list[dict]:
        return self.api("rules")["groups"]

    def alerts(self) -> list[dict]:
        return self.api("alerts")["alerts"]


def _host_port(target: str) -> tuple[str, str, str]:
    """``http://127.0.0.1:9810/metrics`` or ``127.0.0.1:9810`` -> (scheme, host:port, path)."""
    if "://" not in target:
        return "http", target, "/metrics"
    parts = urlsplit(target)
    return parts.scheme, parts.netloc, parts.path if parts.path not in ("", "/") else "/metrics"


def scrape_config(
    jobs: dict[str, Sequence[str]],
    rule_files: Sequence[str | Path] = (),
    interval: str = "1s",
) -> dict:
    """A bare config: one job per entry (targets as URLs or host:port), the given rules."""
    scrapes = []
    for job, targets in jobs.items():
        found = [_host_port(t) for t in targets]
        scheme, _, path = found[0] if found else ("http", "", "/metrics")
        scrapes.append(
            {
                "job_name": job,
                "scheme": scheme,
                "metrics_path": path,
                "static_configs": [{"targets": [hp for _, hp, _ in found]}],
            }
        )
    return {
        "global": {
            "scrape_interval": interval,
            "scrape_timeout": interval,
            "evaluation_interval": interval,
        },
        "rule_files": [str(Path(p).resolve()) for p in rule_files],
        "scrape_configs": scrapes,
    }


def shipped_config(
    targets: dict[str, Sequence[str]],
    interval: str = "1s",
    alertmanager: str | None = None,
) -> dict:
    """deploy/prometheus/prometheus.yml with its rules, its jobs aimed at ``targets``.

    Jobs not named in ``targets`` are dropped, extra names are added as plain jobs; the
    alerting section is kept only when ``alertmanager`` (host:port) is given.
    """
    config = yaml.safe_load(SHIPPED_CONFIG.read_text())
    config["global"].update(
        scrape_interval=interval, scrape_timeout=interval, evaluation_interval=interval
    )
    config["rule_files"] = [
        str((SHIPPED_CONFIG.parent / pattern).resolve()) for pattern in config["rule_files"]
    ]
    jobs = []
    for job in config["scrape_configs"]:
        if job["job_name"] not in targets:
            continue
        found = [_host_port(t) for t in targets[job["job_name"]]]
        job = {**job, "static_configs": [{"targets": [hp for _, hp, _ in found]}]}
        job.pop("scrape_timeout", None)
        jobs.append(job)
    shipped = {j["job_name"] for j in config["scrape_configs"]}
    extra = {name: t for name, t in targets.items() if name not in shipped}
    jobs += scrape_config(extra)["scrape_configs"]
    config["scrape_configs"] = jobs
    if alertmanager is None:
        config.pop("alerting", None)
    else:
        config["alerting"] = {"alertmanagers": [{"static_configs": [{"targets": [alertmanager]}]}]}
    return config


@contextmanager
def run_prometheus(
    config: dict | str,
    workdir: Path,
    timeout: float = 30.0,
    tsdb: Path | None = None,
    retention: str = "1d",
) -> Iterator[Prometheus]:
    """Start Prometheus with ``config`` (a dict or YAML text) in ``workdir``; stop it after.

    Its storage is ``workdir/data`` unless ``tsdb`` names one (e.g. a backfilled TSDB, with a
    ``retention`` long enough to keep its past)."""
    binary = require_binary("prometheus")
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / "prometheus.yml"
    text = config if isinstance(config, str) else yaml.safe_dump(config, sort_keys=False)
    path.write_text(text)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    cmd = [
        binary,
        f"--config.file={path}",
        f"--storage.tsdb.path={tsdb or workdir / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        f"--storage.tsdb.retention.time={retention}",
        "--log.level=warn",
    ]
    with running(cmd, ready_url=f"{url}/-/ready", timeout=timeout) as proc:
        deadline = time.monotonic() + timeout
        while requests.get(f"{url}/-/ready", timeout=2).status_code != 200:
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError("prometheus did not become ready")
            time.sleep(0.2)
        yield Prometheus(url=url, config_path=path)


@pytest.fixture
def prometheus(tmp_path: Path):
    """Factory: ``prometheus(config)`` starts a Prometheus; all are stopped after the test."""
    with ExitStack() as stack:
        count = 0

        def start(config: dict | str) -> Prometheus:
            nonlocal count
            count += 1
            return stack.enter_context(run_prometheus(config, tmp_path / f"prometheus-{count}"))

        yield start
