"""The whole pipeline on one machine (issue 10): `sscp-ops stack` — exporter, webhook,
Prometheus with the shipped rules, Alertmanager with the shipped config — and a real fault.

A private redis-server is a target. Stopping it must travel: redis_up 0 → RedisDown fires in
Prometheus → Alertmanager → webhook → one incident → one SMS at the (fake, local) gateway;
starting it again resolves the incident from the alert's resolution. The Watchdog heartbeat
must arrive, and a hung Alertmanager (SIGSTOP) must raise the pipeline-down notice.
The measured times are printed (run with -s) and recorded in docs/performance.md.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests
import yaml
from fx_servers import redis_server
from helpers import ROOT, free_port, require_binary, wait_for

PHONE = "13912345678"


def test_fault_travels_to_a_ticket_and_an_sms_and_back(tmp_path: Path, gateway) -> None:
    require_binary("prometheus")
    require_binary("prometheus-alertmanager", "alertmanager")
    ports = {name: free_port() for name in ("exporter", "webhook", "prometheus", "alertmanager")}
    data = tmp_path / "var"

    with redis_server(tmp_path / "redis") as redis:
        base = {
            "exporter": {"collectors": {"host": True}},
            "targets": {"redis": [{"name": "cache-e2e", "address": redis.address}]},
            "webhook": {
                "heartbeat_timeout": 90,  # above the Watchdog repeat (1m) + group interval
                "sms": {
                    "backend": "http",
                    "http": {
                        "url": gateway.url + "/sms",
                        "body_template": '{{"phone": "{phone}", "text": "{text}", '
                        '"out_id": "{out_id}"}}',
                    },
                },
                "roster": {"shifts": [{"primary": {"name": "值班员", "phone": PHONE}}]},
            },
        }
        cfg = tmp_path / "base.yml"
        cfg.write_text(yaml.safe_dump(base, allow_unicode=True))
        cmd = [
            sys.executable,
            "-m",
            "sscp_ops",
            "stack",
            "--config.file",
            str(cfg),
            "--data-dir",
            str(data),
            "--root",
            str(ROOT),
            "--scrape-interval",
            "2s",
            "--evaluation-interval",
            "2s",
            *[arg for name, port in ports.items() for arg in (f"--{name}-port", str(port))],
        ]
        stack = subprocess.Popen(
            cmd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        prom = f"http://127.0.0.1:{ports['prometheus']}"
        hook = f"http://127.0.0.1:{ports['webhook']}"
        try:
            banner = []
            for line in stack.stdout:
                banner.append(line)
                if "data and logs" in line:
                    break
            assert any(f":{ports['prometheus']}/" in line for line in banner), "".join(banner)

            token = (
                subprocess.run(
                    [
                        sys.executable,
                        "-m",
                        "sscp_ops",
                        "webhook",
                        "token",
                        "create",
                        "--config.file",
                        str(data / "config.yml"),
                        "--role",
                        "viewer",
                    ],
                    capture_output=True,
                    text=True,
                    check=True,
                )
                .stdout.strip()
                .split()[-1]
            )
            auth = {"Authorization": f"Bearer {token}"}

            def tickets() -> list[dict]:
                r = requests.get(f"{hook}/api/v1/tickets", headers=auth, timeout=5)
                r.raise_for_status()
                body = r.json()
                return body["tickets"] if isinstance(body, dict) else body

            def redis_up() -> float | None:
                r = requests.get(f"{prom}/api/v1/query", params={"query": "redis_up"}, timeout=5)
                result = r.json()["data"]["result"]
                return float(result[0]["value"][1]) if result else None

            wait_for(lambda: redis_up() == 1, 60, "redis_up 1 in Prometheus")
            # The Watchdog heartbeat reaches the webhook.
            wait_for(
                lambda: (
                    "sscp_webhook_heartbeat_last_timestamp_seconds"
                    in requests.get(f"{hook}/metrics", timeout=5).text
                ),
                60,
                "the Watchdog heartbeat",
            )

            # The fault.
            t0 = time.monotonic()
            redis.stop()
            incident = wait_for(
                lambda: [t for t in tickets() if t["alertname"] == "RedisDown"],
                240,
                "a RedisDown incident",
                interval=2,
            )
            to_ticket = time.monotonic() - t0
            sms = wait_for(
                lambda: [
                    m for m in gateway.sms() if "RedisDown" in m["text"] or "Redis" in m["text"]
                ],
                60,
                "the SMS at the gateway",
            )
            to_sms = time.monotonic() - t0
            time.sleep(15)  # repeats / retries must not add tickets or SMS
            redis_tickets = [t for t in tickets() if t["alertname"] == "RedisDown"]
            assert len(redis_tickets) == 1, redis_tickets
            assert redis_tickets[0]["target"] == "cache-e2e"
            assert redis_tickets[0]["severity"] == "critical"
            assert (
                len([m for m in gateway.sms() if m["phone"] == PHONE and "Redis" in m["text"]]) == 1
            )
            assert incident and sms

            # Undo the fault: the alert's resolution resolves the incident.
            t1 = time.monotonic()
            redis.start()
            resolved = wait_for(
                lambda: [
                    t
                    for t in tickets()
                    if t["alertname"] == "RedisDown" and t["status"] == "resolved"
                ],
                240,
                "the incident resolved by the alert",
                interval=2,
            )
            to_resolved = time.monotonic() - t1
            assert resolved[0]["resolution_source"] == "alert"

            # A hung Alertmanager: heartbeats stop, the webhook raises the pipeline-down notice.
            am_pid = int(
                subprocess.run(
                    ["pgrep", "-f", "--", f"web.listen-address=127.0.0.1:{ports['alertmanager']}"],
                    capture_output=True,
                    text=True,
                    check=True,
                ).stdout.split()[0]
            )
            pipeline_sms = [m for m in gateway.sms() if "监控链路中断" in m["text"]]
            assert pipeline_sms == [], "heartbeats arrived in time: no pipeline-down notice yet"
            os.kill(am_pid, signal.SIGSTOP)
            try:
                t2 = time.monotonic()
                wait_for(
                    lambda: [m for m in gateway.sms() if "监控链路中断" in m["text"]],
                    240,
                    "the pipeline-down SMS",
                )
                to_pipeline = time.monotonic() - t2
            finally:
                os.kill(am_pid, signal.SIGCONT)

            print(
                json.dumps(
                    {
                        "condition_to_ticket_s": round(to_ticket, 1),
                        "condition_to_sms_s": round(to_sms, 1),
                        "recovery_to_resolved_s": round(to_resolved, 1),
                        "alertmanager_hung_to_pipeline_notice_s": round(to_pipeline, 1),
                    }
                )
            )
            # RedisDown has `for: 1m`; Alertmanager waits 10 s for critical groups.
            assert 60 <= to_ticket <= 180
            # The last heartbeat came at most ~70 s before the freeze; the timeout is 90 s.
            assert 20 <= to_pipeline <= 180
        finally:
            os.killpg(stack.pid, signal.SIGINT)
            try:
                rc = stack.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(stack.pid, signal.SIGKILL)
                raise
            out = stack.stdout.read()
            stack.stdout.close()
    assert rc == 0, out
    leftovers = subprocess.run(
        ["pgrep", "-f", str(data)], capture_output=True, text=True
    ).stdout.split()
    assert leftovers == [], "every component stopped with the stack"
