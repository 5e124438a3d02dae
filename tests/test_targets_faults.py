"""Faults of remote targets, through a real ``sscp-ops exporter`` process: targets that are
down, refuse our password, accept TCP and never answer, answer garbage, or restart between
scrapes. One exporter watches a good and several broken targets of every system at once, so
each scrape also shows the good targets still reported beside the broken ones.
"""

from __future__ import annotations

import os
import secrets
import signal
import time

import pytest
import requests
from fx_servers import redis_server, silent_server
from fx_targets import garbage_redis, parse_samples
from helpers import FIXTURES, free_port, running, sscp_ops_cmd, wait_http

DEADLINE = 2.5
SECRETS = {name: f"S3cret-{name}-{secrets.token_hex(6)}" for name in ("tomcat", "redis", "mysql")}


@pytest.fixture(scope="module")
def matrix(nginx, tomcat, mysql_user, mysql_server, tmp_path_factory):
    """Scrape the fault matrix twice; returns (scrapes, durations, bodies, stderr)."""
    directory = tmp_path_factory.mktemp("faults")
    (nginx.root / "truncated-status.xml").write_text(
        (FIXTURES / "tomcat" / "status.xml").read_text()[:700]
    )
    truncated_info = (FIXTURES / "redis" / "info.txt").read_bytes()[:600]
    closed = free_port()  # nothing listens there
    redis_pass = directory / "redis.pass"
    redis_pass.write_text(SECRETS["redis"] + "\n")
    env = {"TOMCAT_BAD_PASS": SECRETS["tomcat"], "MYSQL_BAD_PASS": SECRETS["mysql"]}
    with (
        silent_server() as silent,
        garbage_redis(truncated_info) as garbage,
        redis_server(directory / "locked", password="the-right-one") as locked,
        redis_server(directory / "cache") as cache,
    ):
        config = f"""
exporter: {{deadline: {DEADLINE}, collectors: {{host: false}}}}
targets:
  nginx:
    - {{name: web1, url: "{nginx.stub_status_url}"}}
    - {{name: down, url: "http://127.0.0.1:{closed}/stub_status"}}
    - {{name: silent, url: "http://127.0.0.1:{silent}/stub_status", timeout: 1}}
    - {{name: silent-long, url: "http://127.0.0.1:{silent}/stub_status", timeout: 30}}
    - {{name: html, url: "{nginx.url("/broken")}"}}
  tomcat:
    - {{name: app1, url: "{tomcat.status_url}", user: {tomcat.user},
       password_file: {tomcat.password_file}}}
    - {{name: badpass, url: "{tomcat.status_url}", user: {tomcat.user},
       password_env: TOMCAT_BAD_PASS}}
    - {{name: silent, url: "http://127.0.0.1:{silent}/manager/status?XML=true", timeout: 1}}
    - {{name: xml, url: "{nginx.url("/truncated-status.xml")}"}}
  redis:
    - {{name: cache1, address: "{cache.address}"}}
    - {{name: down, address: "127.0.0.1:{closed}"}}
    - {{name: badpass, address: "{locked.address}", password_file: {redis_pass}}}
    - {{name: silent, address: "127.0.0.1:{silent}", timeout: 1}}
    - {{name: truncated, address: "127.0.0.1:{garbage}"}}
  mysql:
    - {{name: db1, address: "{mysql_user.address}", user: {mysql_user.user},
       password_file: {mysql_user.password_file}}}
    - {{name: down, address: "127.0.0.1:{closed}", user: {mysql_user.user}}}
    - {{name: badpass, address: "{mysql_user.address}", user: {mysql_user.user},
       password_env: MYSQL_BAD_PASS}}
    - {{name: silent, address: "127.0.0.1:{silent}", user: x, timeout: 1}}
"""
        cfg = directory / "exporter.yml"
        cfg.write_text(config)
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        cmd = sscp_ops_cmd(
            "exporter", "--config.file", str(cfg), "--web.listen-address", f"127.0.0.1:{port}"
        )
        scrapes, durations, bodies = [], [], []
        with running(cmd, env=env) as proc:
            wait_http(f"{base}/healthz", proc=proc)
            for _ in range(2):
                start = time.monotonic()
                response = requests.get(f"{base}/metrics", timeout=30)
                durations.append(time.monotonic() - start)
                assert response.status_code == 200  # never a 500
                bodies.append(response.text)
                scrapes.append(parse_samples(response.text))
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(10)
            stderr = proc.stderr.read()
    return scrapes, durations, bodies, stderr


def value(samples: dict, name: str, **labels: str) -> float:
    return samples[(name, frozenset(labels.items()))]


@pytest.mark.parametrize(
    ("system", "target"),
    [("nginx", "web1"), ("tomcat", "app1"), ("redis", "cache1"), ("mysql", "db1")],
)
def test_good_targets_reported_beside_broken_ones(matrix, system: str, target: str) -> None:
    for samples in matrix[0]:
        assert value(samples, f"{system}_up", target=target) == 1
        assert value(samples, "sscp_exporter_collector_success", collector=system, target=target)
        assert len([k for k in samples if ("target", target) in k[1]]) > 3  # real values too


@pytest.mark.parametrize(
    ("system", "target"),
    [
        ("nginx", "down"),
        ("redis", "down"),
        ("mysql", "down"),
        ("tomcat", "badpass"),
        ("redis", "badpass"),
        ("mysql", "badpass"),
        ("nginx", "silent"),
        ("nginx", "silent-long"),  # its 30 s timeout is cut to 90 % of the deadline
        ("tomcat", "silent"),
        ("redis", "silent"),
        ("mysql", "silent"),
    ],
)
def test_unreachable_target_is_down_but_collector_succeeds(matrix, system, target) -> None:
    for samples in matrix[0]:
        assert value(samples, f"{system}_up", target=target) == 0
        assert (
            value(samples, "sscp_exporter_collector_success", collector=system, target=target) == 1
        )
        assert [k for k in samples if ("target", target) in k[1] and k[0].startswith(system)] == [
            (f"{system}_up", frozenset({("target", target)}))
        ]


@pytest.mark.parametrize(
    ("system", "target"),
    [("nginx", "html"), ("tomcat", "xml"), ("redis", "truncated")],
)
def test_garbage_is_a_failed_collector(matrix, system, target) -> None:
    for samples in matrix[0]:
        assert value(samples, f"{system}_up", target=target) == 0
        assert (
            value(samples, "sscp_exporter_collector_success", collector=system, target=target) == 0
        )


def test_silent_targets_are_cut_and_scrape_answers_within_deadline(matrix) -> None:
    scrapes, durations, _, _ = matrix
    assert all(d < DEADLINE + 1.5 for d in durations), durations
    for samples in scrapes:
        took = value(
            samples, "sscp_exporter_collector_duration_seconds", collector="redis", target="silent"
        )
        assert 0.9 <= took < DEADLINE  # its own timeout of 1 s
        took = value(
            samples,
            "sscp_exporter_collector_duration_seconds",
            collector="nginx",
            target="silent-long",
        )
        assert 0.9 * DEADLINE <= took < DEADLINE + 0.5


def test_wrong_password_logs_one_line_without_the_secret(matrix) -> None:
    _, _, bodies, stderr = matrix
    for secret in SECRETS.values():
        assert secret not in stderr
        assert all(secret not in body for body in bodies)
    for system in ("tomcat", "redis", "mysql"):
        lines = [
            line
            for line in stderr.splitlines()
            if f"collector={system}" in line and "target=badpass" in line
        ]
        assert len(lines) == 2, lines  # one per scrape
        assert "level=warning" in lines[0] and 'msg="target unavailable"' in lines[0]
    assert "HTTP 401" in stderr
    assert "1045" in stderr  # MySQL's access denied
    assert "Traceback" not in stderr


def test_garbage_is_logged_as_parse_error(matrix) -> None:
    stderr = matrix[3]
    for system, target in (("nginx", "html"), ("tomcat", "xml"), ("redis", "truncated")):
        lines = [
            line
            for line in stderr.splitlines()
            if f"collector={system}" in line and f"target={target}" in line
        ]
        assert lines and all("ParseError" in line for line in lines), "\n".join(lines)


# ---------------------------------------------------------------------------- restarts


def test_servers_restarted_between_scrapes_are_reconnected(
    exporter_process, redis_factory, nginx_factory, mysql_user, mysql_server
) -> None:
    cache = redis_factory()
    web = nginx_factory()
    proc = exporter_process(f"""
exporter: {{collectors: {{host: false}}}}
targets:
  redis: [{{name: r, address: "{cache.address}", timeout: 1}}]
  nginx: [{{name: n, url: "{web.stub_status_url}", timeout: 1}}]
  mysql: [{{name: m, address: "{mysql_user.address}", user: {mysql_user.user},
           password_file: {mysql_user.password_file}}}]
""")

    def up() -> dict[str, float]:
        samples = parse_samples(requests.get(proc.metrics_url, timeout=10).text)
        return {
            system: value(samples, f"{system}_up", target=system[0])
            for system in ("redis", "nginx", "mysql")
        }

    assert up() == {"redis": 1, "nginx": 1, "mysql": 1}

    # Redis stopped and started again on the same port
    cache.stop()
    assert up()["redis"] == 0
    cache.start()
    assert up()["redis"] == 1

    # Nginx restarted: its kept-alive connection is gone
    os.kill(web.proc.pid, signal.SIGQUIT)
    web.proc.wait(10)
    assert up()["nginx"] == 0
    with running(web.proc.args) as again:
        wait_http(web.stub_status_url, proc=again)
        assert up()["nginx"] == 1

    # MariaDB dropped our connection (as a restart or wait_timeout would)
    root = mysql_server.root()
    with root.cursor() as cur:
        cur.execute(
            "SELECT ID FROM information_schema.PROCESSLIST WHERE USER = %s", (mysql_user.user,)
        )
        ids = [row[0] for row in cur.fetchall()]
        assert ids, "the exporter keeps its connection between scrapes"
        for ident in ids:
            cur.execute(f"KILL {int(ident)}")
    root.close()
    assert up()["mysql"] == 1
    assert "Traceback" not in proc.stop()


def test_mysql_connection_is_reused_across_scrapes(
    exporter_process, mysql_user, mysql_server
) -> None:
    proc = exporter_process(f"""
exporter: {{collectors: {{host: false}}}}
targets:
  mysql: [{{name: m, address: "{mysql_user.address}", user: {mysql_user.user},
           password_file: {mysql_user.password_file}}}]
""")
    root = mysql_server.root()

    def connections() -> list:
        with root.cursor() as cur:
            cur.execute(
                "SELECT ID FROM information_schema.PROCESSLIST WHERE USER = %s",
                (mysql_user.user,),
            )
            return sorted(row[0] for row in cur.fetchall())

    try:
        for _ in range(3):
            requests.get(proc.metrics_url, timeout=10).raise_for_status()
        first = connections()
        for _ in range(3):
            requests.get(proc.metrics_url, timeout=10).raise_for_status()
        assert connections() == first and len(first) == 1
    finally:
        root.close()
