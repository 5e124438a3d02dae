"""A MariaDB whose server and database default to latin1: the migration still creates
utf8mb4 tables, Chinese alerts become tickets, and a store that cannot hold Chinese text
(tables restored from a latin1 dump) refuses to start with one clear line."""

from __future__ import annotations

import subprocess

import pytest
import yaml
from fx_servers import mariadb_server
from fx_webhook import AM_TOKEN, PHONES, payload
from fx_webhook import bearer as auth
from helpers import free_port, sscp_ops_cmd

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def latin1_server(tmp_path_factory):
    directory = tmp_path_factory.mktemp("latin1")
    with mariadb_server(
        directory, "--character-set-server=latin1", "--collation-server=latin1_swedish_ci"
    ) as db:
        yield db


@pytest.fixture
def latin1_url(latin1_server, request):
    name = f"sscp_{request.node.name[-20:].strip('_[]').replace('-', '_')}"[:60]
    conn = latin1_server.root()
    with conn.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
        cur.execute(f"CREATE DATABASE `{name}`")  # the server's default: latin1
        cur.execute(
            "SELECT DEFAULT_CHARACTER_SET_NAME FROM information_schema.SCHEMATA"
            " WHERE SCHEMA_NAME = %s",
            (name,),
        )
        assert cur.fetchone()[0] == "latin1"
    yield f"mysql+pymysql://root@127.0.0.1:{latin1_server.port}/{name}", name, conn
    conn.close()


def test_latin1_server_still_gets_utf8mb4_tables_and_chinese_tickets(
    latin1_url, webhook_config, make_services
):
    from webhook.app import create_app

    url, name, root = latin1_url
    svc = make_services(webhook_config(database=url))
    client = create_app(svc.config, svc).test_client()
    assert client.get("/healthz").status_code == 200
    r = client.post("/api/v1/alerts", json=payload("firing-hostdown.json"), headers=auth(AM_TOKEN))
    assert r.status_code == 200, r.get_data(as_text=True)[:300]
    [t] = svc.store.list_tickets()
    assert t["summary"] == "主机 web1 无法访问"
    with root.cursor() as cur:
        cur.execute(
            "SELECT DISTINCT CHARACTER_SET_NAME FROM information_schema.COLUMNS"
            " WHERE TABLE_SCHEMA = %s AND CHARACTER_SET_NAME IS NOT NULL"
            " AND TABLE_NAME <> 'alembic_version'",
            (name,),
        )
        assert {row[0] for row in cur.fetchall()} == {"utf8mb4"}


def test_store_that_cannot_hold_chinese_refuses_to_start(
    latin1_url, webhook_config, make_services, tmp_path, am_token_file
):
    url, name, root = latin1_url
    make_services(webhook_config(database=url))  # migrated: utf8mb4
    with root.cursor() as cur:  # then restored from a latin1 dump
        cur.execute(f"ALTER TABLE `{name}`.tickets CONVERT TO CHARACTER SET latin1")
    config = tmp_path / "sscp.yml"
    port = free_port()
    config.write_text(
        yaml.safe_dump(
            {
                "webhook": {
                    "database": url,
                    "alertmanager_token_file": str(am_token_file),
                    "roster": {"shifts": [{"primary": {"name": "张三", "phone": PHONES[0]}}]},
                }
            },
            allow_unicode=True,
        )
    )
    r = subprocess.run(
        sscp_ops_cmd(
            "webhook",
            "--no-worker",
            "--config.file",
            str(config),
            "--web.listen-address",
            f"127.0.0.1:{port}",
        ),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 2, r.stderr[-2000:]
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert name in lines[0] and "utf8mb4" in lines[0] and "tickets" in lines[0]
