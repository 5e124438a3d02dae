"""The whole kit on one machine (``make run``): exporter, webhook, Prometheus, Alertmanager.

Everything listens on loopback, keeps its data under one directory (``./var`` by default) and
is stopped on Ctrl-C, SIGTERM and SIGHUP (a closed terminal); if the stack itself is killed
with SIGKILL, every child gets SIGTERM from the kernel (``sscp_ops.lifetime``). Config files
for the child processes are generated into the data directory on every start from the shipped
ones, so a second run in a row works and nothing in the checkout is modified.
"""

from __future__ import annotations

import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import requests
import yaml

from sscp_ops.alertmanager import shipped_alert_size, with_email, with_max_alerts
from sscp_ops.config import Config
from sscp_ops.config.base import SecretRef
from sscp_ops.filemode import PRIVATE, secret_once
from sscp_ops.lifetime import exit_with_parent

log = logging.getLogger("stack")


@dataclass(frozen=True)
class Ports:
    exporter: int = 9810
    webhook: int = 9811
    prometheus: int = 9090
    alertmanager: int = 9093


@dataclass(frozen=True)
class StackPlan:
    """What to start: resolved paths, ports and intervals."""

    root: Path  # the checkout: rules/, alertmanager/
    data: Path  # ./var
    ports: Ports = Ports()
    host: str = "127.0.0.1"
    scrape_interval: str = "15s"
    evaluation_interval: str = "15s"
    base_config: dict = field(default_factory=dict)


def tcp_answers(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def kit_config(plan: StackPlan, detect: Callable[[str, int], bool] = tcp_answers) -> dict:
    """The sscp-ops config for the exporter and webhook of this stack.

    Starts from ``plan.base_config``; adds the local MariaDB and Redis as targets when they
    answer on their default ports and no targets of that kind are configured.
    """
    cfg = {k: v for k, v in plan.base_config.items()}
    exporter = dict(cfg.get("exporter") or {})
    exporter["listen_address"] = f"{plan.host}:{plan.ports.exporter}"
    cfg["exporter"] = exporter
    targets = dict(cfg.get("targets") or {})
    if "redis" not in targets and detect("127.0.0.1", 6379):
        targets["redis"] = [{"name": "local", "address": "127.0.0.1:6379"}]
    if "mysql" not in targets and detect("127.0.0.1", 3306):
        targets["mysql"] = [{"name": "local", "address": "127.0.0.1:3306", "user": "root"}]
    if targets:
        cfg["targets"] = targets
    webhook = dict(cfg.get("webhook") or {})
    webhook.setdefault("database", f"sqlite:///{plan.data / 'webhook' / 'tickets.db'}")
    webhook["alertmanager_token_file"] = str(plan.data / "alertmanager.token")
    webhook["listen_address"] = f"{plan.host}:{plan.ports.webhook}"
    webhook["public_url"] = f"http://{plan.host}:{plan.ports.webhook}"
    webhook.setdefault("sms", {"backend": "log"})
    cfg["webhook"] = webhook
    return cfg


def _default_ports(plan: StackPlan) -> dict[str, str]:
    """Shipped loopback addresses -> this stack's addresses."""
    h, p, d = plan.host, plan.ports, Ports()
    return {f"127.0.0.1:{getattr(d, name)}": f"{h}:{getattr(p, name)}" for name in vars(d)}


def prometheus_config(plan: StackPlan, shipped: dict) -> dict:
    """The shipped Prometheus config with this stack's addresses, rules and intervals."""
    cfg = shipped
    for old, new in _default_ports(plan).items():
        cfg = _rewrite_urls(cfg, old, new)
    cfg["rule_files"] = [str(plan.root / "rules" / "*.rules.yml")]
    glob = dict(cfg.get("global") or {})
    glob["scrape_interval"] = plan.scrape_interval
    glob["evaluation_interval"] = plan.evaluation_interval
    glob["scrape_timeout"] = min(plan.scrape_interval, "10s", key=_seconds)
    cfg["global"] = glob
    for job in cfg.get("scrape_configs", []):
        job.pop("scrape_timeout", None)  # the global one, never above the interval
    return cfg


def _seconds(duration: str) -> float:
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    for unit in ("ms", "s", "m", "h"):
        if duration.endswith(unit):
            return float(duration[: -len(unit)]) * units[unit]
    raise ValueError(f"unsupported duration {duration!r}")


def _rewrite_urls(node: object, old: str, new: str) -> object:
    if isinstance(node, dict):
        return {k: _rewrite_urls(v, old, new) for k, v in node.items()}
    if isinstance(node, list):
        return [_rewrite_urls(v, old, new) for v in node]
    if isinstance(node, str):
        return node.replace(old, new)
    return node


def alertmanager_config(plan: StackPlan, shipped: dict, kit: Config) -> dict:
    """The shipped Alertmanager config with this stack's webhook address and token file,
    ``max_alerts`` for the webhook's body limit, and the e-mail way out of the kit config's
    ``alertmanager.email`` (dropped, with a warning, when there is none)."""
    cfg = shipped
    for old, new in _default_ports(plan).items():
        cfg = _rewrite_urls(cfg, old, new)
    token = str(plan.data / "alertmanager.token")

    def fix(node: object) -> object:
        if isinstance(node, dict):
            out = {k: fix(v) for k, v in node.items()}
            if "credentials_file" in out:
                out["credentials_file"] = token
            return out
        if isinstance(node, list):
            return [fix(v) for v in node]
        return node

    cfg = fix(cfg)
    cfg["templates"] = [str(plan.root / "alertmanager" / "templates" / "*.tmpl")]
    size = shipped_alert_size(plan.root)
    cfg = with_max_alerts(cfg, size.max_alerts(kit.webhook.max_body_bytes))
    email = kit.alertmanager.email
    if email is None:
        log.warning(
            "no alertmanager.email in the config: the alert pipeline's own alerts reach "
            "the on-call person only through the webhook"
        )
        return with_email(cfg, None, None)
    password_file = None
    if email.auth_password_file is not None or email.auth_password_env is not None:
        # Alertmanager 0.25 sends the file's bytes as they are, a final newline included (the
        # login then fails): it gets a copy without one, as every secret file here is read.
        password = SecretRef(
            password_file=email.auth_password_file, password_env=email.auth_password_env
        ).password()
        password_file = plan.data / "alertmanager" / "smtp.password"
        write_secret(password_file, password or "")
    return with_email(cfg, email, password_file)


def write_secret(path: Path, value: str) -> None:
    """Write ``value`` to ``path``, readable by the owner only (mode 0600 from the start)."""
    PRIVATE.makedirs(path.parent)
    PRIVATE.write_atomic(path, value.encode())


def ensure_token(path: Path) -> str:
    """The webhook's Alertmanager token: kept across runs, created once (mode 0600)."""
    return secret_once(path, lambda: secrets.token_urlsafe(32))


@dataclass
class Child:
    name: str
    argv: Sequence[str]
    ready_url: str
    proc: subprocess.Popen | None = None


def find_binary(*names: str) -> str:
    for name in names:
        path = shutil.which(name)
        if path:
            return path
    raise FileNotFoundError(f"none of {', '.join(names)} is installed")


class Stack:
    """Starts the children in order, waits until each answers, stops all on the first exit."""

    def __init__(self, plan: StackPlan, python: str = sys.executable) -> None:
        self.plan = plan
        self.python = python
        self.children: list[Child] = []
        self.stop_event = threading.Event()

    def prepare(self) -> list[Child]:
        plan, h, p = self.plan, self.plan.host, self.plan.ports
        # Private (0700 / 0600 whatever the umask): the data holds the ticket store, tokens,
        # the logs and the metrics; an existing directory of an older run is tightened.
        PRIVATE.makedirs(plan.data)
        PRIVATE.tighten(plan.data)
        for sub in ("prometheus/data", "alertmanager/data", "webhook", "logs"):
            PRIVATE.makedirs(plan.data / sub)
        ensure_token(plan.data / "alertmanager.token")
        kit = plan.data / "config.yml"
        kit_dict = kit_config(plan)
        PRIVATE.write_atomic(
            kit, yaml.safe_dump(kit_dict, allow_unicode=True, sort_keys=False).encode()
        )
        prom = plan.data / "prometheus" / "prometheus.yml"
        shipped_prom = yaml.safe_load(
            (plan.root / "deploy" / "prometheus" / "prometheus.yml").read_text()
        )
        PRIVATE.write_atomic(
            prom, yaml.safe_dump(prometheus_config(plan, shipped_prom), sort_keys=False).encode()
        )
        thresholds = yaml.safe_load((plan.root / "rules" / "thresholds.yml").read_text())
        # as long as the reports need (PrometheusRetentionTooShort fires below it)
        retention = thresholds["alerts"]["PrometheusRetentionTooShort"]["min_days"]
        shipped = yaml.safe_load((plan.root / "alertmanager" / "alertmanager.yml").read_text())
        am = plan.data / "alertmanager" / "alertmanager.yml"
        rendered = alertmanager_config(plan, shipped, Config.model_validate(kit_dict))
        PRIVATE.write_atomic(
            am, yaml.safe_dump(rendered, allow_unicode=True, sort_keys=False).encode()
        )
        sscp = [self.python, "-m", "sscp_ops"]
        return [
            Child(
                "exporter",
                [
                    *sscp,
                    "exporter",
                    "--config.file",
                    str(kit),
                    "--web.listen-address",
                    f"{h}:{p.exporter}",
                ],
                f"http://{h}:{p.exporter}/healthz",
            ),
            Child(
                "webhook",
                [
                    *sscp,
                    "webhook",
                    "--config.file",
                    str(kit),
                    "--web.listen-address",
                    f"{h}:{p.webhook}",
                ],
                f"http://{h}:{p.webhook}/healthz",
            ),
            Child(
                "alertmanager",
                [
                    find_binary("prometheus-alertmanager", "alertmanager"),
                    f"--config.file={am}",
                    f"--storage.path={plan.data / 'alertmanager' / 'data'}",
                    f"--web.listen-address={h}:{p.alertmanager}",
                    "--cluster.listen-address=",
                ],
                f"http://{h}:{p.alertmanager}/-/ready",
            ),
            Child(
                "prometheus",
                [
                    find_binary("prometheus"),
                    f"--config.file={prom}",
                    f"--storage.tsdb.path={plan.data / 'prometheus' / 'data'}",
                    f"--storage.tsdb.retention.time={retention}d",
                    f"--web.listen-address={h}:{p.prometheus}",
                    "--web.enable-lifecycle",
                ],
                f"http://{h}:{p.prometheus}/-/ready",
            ),
        ]

    def check_ports(self) -> None:
        """Refuse to start when a port is taken (another stack would answer our readiness)."""
        for name, port in vars(self.plan.ports).items():
            with socket.socket() as s:
                # as the servers themselves do: TIME_WAIT left by the previous run is no conflict
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    s.bind((self.plan.host, port))
                except OSError as exc:
                    raise RuntimeError(
                        f"cannot use {self.plan.host}:{port} for {name}: {exc.strerror}"
                    ) from None

    def start(self, timeout: float = 60.0) -> None:
        self.check_ports()
        for child in self.prepare():
            logfile = PRIVATE.open(self.plan.data / "logs" / f"{child.name}.log", "ab")
            # A session of its own (a Ctrl-C reaches the stack only, which stops the children
            # in order), and a SIGTERM when the stack is gone, even killed with SIGKILL.
            child.proc = subprocess.Popen(
                child.argv,
                stdout=logfile,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=exit_with_parent(),
            )
            logfile.close()
            self.children.append(child)
            self._wait_ready(child, timeout)
            log.info("started", extra={"kv": {"component": child.name, "pid": child.proc.pid}})

    def _wait_ready(self, child: Child, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if child.proc.poll() is not None:
                raise RuntimeError(
                    f"{child.name} exited with {child.proc.returncode}; "
                    f"see {self.plan.data / 'logs' / (child.name + '.log')}"
                )
            try:
                if requests.get(child.ready_url, timeout=1).status_code < 500:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"{child.name} did not become ready within {timeout:.0f}s")

    def urls(self) -> dict[str, str]:
        h, p = self.plan.host, self.plan.ports
        return {
            "Prometheus": f"http://{h}:{p.prometheus}/",
            "Alertmanager": f"http://{h}:{p.alertmanager}/",
            "Exporter": f"http://{h}:{p.exporter}/metrics",
            "Ticket UI and webhook": f"http://{h}:{p.webhook}/",
        }

    def wait(self) -> str | None:
        """Block until a signal or a child's exit; returns the name of a child that died."""
        while not self.stop_event.wait(0.5):
            for child in self.children:
                if child.proc and child.proc.poll() is not None:
                    return child.name
        return None

    def stop(self) -> None:
        for child in reversed(self.children):
            if child.proc and child.proc.poll() is None:
                os.killpg(child.proc.pid, signal.SIGTERM)
        for child in reversed(self.children):
            if not child.proc:
                continue
            try:
                child.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(child.proc.pid, signal.SIGKILL)
                child.proc.wait()
        self.children.clear()
