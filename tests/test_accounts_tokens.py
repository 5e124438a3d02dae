"""Account review of the webhook's API tokens: tokens made by the real ``sscp-ops webhook token
create`` on a temp SQLite store, used through the real Flask app, then reviewed by the real
``sscp-ops review accounts``."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import subprocess
from pathlib import Path

import pytest
from fx_webhook import bearer
from helpers import parse_exposition, sscp_ops_cmd

from sscp_ops.accounts import KINDS, TokenRecord, review_tokens
from sscp_ops.config.account_review import AccountReviewConfig


def write_config(tmp_path: Path) -> Path:
    am = tmp_path / "am.token"
    am.write_text("am-secret-for-tests\n")
    cfg = tmp_path / "review.yml"
    cfg.write_text(
        f"""
webhook:
  database: sqlite:///{tmp_path / "tickets.db"}
  alertmanager_token_file: {am}
account_review:
  inactive_days: 90
  staff:
    - {{name: 张伟, tokens: [zhangwei-cli]}}
    - {{name: 李娜, tokens: [lina-cli]}}
  service_accounts: {{tokens: [grafana]}}
  privileged: {{tokens: [zhangwei-cli]}}
"""
    )
    return cfg


def create_token(cfg: Path, role: str, name: str) -> str:
    proc = subprocess.run(
        sscp_ops_cmd("webhook", "token", "create", "--config.file", str(cfg),
                     "--role", role, "--name", name),
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    token = proc.stdout.strip()
    assert token.startswith("sscp_")
    return token


def review(cfg: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        sscp_ops_cmd("review", "accounts", "--config.file", str(cfg), "--no-os", "--no-mysql",
                     *args),
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip


@pytest.fixture
def token_store(tmp_path: Path) -> tuple[Path, dict[str, str], Path]:
    """Tokens made by the CLI, two of them used through the app, one back-dated, one revoked."""
    from sscp_ops.config import load_config
    from webhook.app import create_app
    from webhook.services import Services

    cfg = write_config(tmp_path)
    tokens = {
        "zhangwei-cli": create_token(cfg, "admin", "zhangwei-cli"),
        "grafana": create_token(cfg, "viewer", "grafana"),
        "lina-cli": create_token(cfg, "operator", "lina-cli"),
        "rogue": create_token(cfg, "admin", "rogue"),
        "old-script": create_token(cfg, "operator", "old-script"),
    }
    services = Services.from_config(load_config(cfg).webhook)
    try:
        app = create_app(services.config, services)
        app.testing = True
        client = app.test_client()
        for name in ("zhangwei-cli", "grafana"):
            r = client.get("/api/v1/tickets", headers=bearer(tokens[name]))
            assert r.status_code == 200, r.data
        assert client.get("/api/v1/tickets", headers=bearer("sscp_wrong")).status_code == 401
    finally:
        services.store.close()
    db = tmp_path / "tickets.db"
    # no CLI revokes or back-dates a token: set these states in the store directly
    old = (dt.datetime.now(dt.UTC) - dt.timedelta(days=200)).replace(tzinfo=None)
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE api_tokens SET created_at = ? WHERE name = 'lina-cli'", (old,))
        conn.execute("UPDATE api_tokens SET revoked_at = created_at WHERE name = 'old-script'")
    conn.close()
    return cfg, tokens, db


def test_review_tokens_json_metrics_and_table(token_store, tmp_path: Path) -> None:
    cfg, tokens, db = token_store
    with sqlite3.connect(db) as conn:
        used = dict(conn.execute("SELECT name, last_used_at FROM api_tokens"))
        hashes = [h for (h,) in conn.execute("SELECT token_hash FROM api_tokens")]
    conn.close()
    assert used["zhangwei-cli"] and used["grafana"]  # recorded by the app on authentication
    assert used["lina-cli"] is None and used["rogue"] is None

    metrics = tmp_path / "review.prom"
    proc = review(cfg, "--format", "json", "--metrics-file", str(metrics))
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    rows = {r["account"].split(" ", 1)[1]: r for r in doc["accounts"] if r["system"] == "token"}
    assert set(rows) == set(tokens)
    assert rows["zhangwei-cli"]["findings"] == []  # approved admin, used today
    assert rows["zhangwei-cli"]["person"] == "张伟" and rows["zhangwei-cli"]["role"] == "privileged"
    assert rows["zhangwei-cli"]["last_login"] == dt.datetime.now(dt.UTC).strftime("%Y-%m-%d")
    assert rows["grafana"]["findings"] == [] and rows["grafana"]["role"] == "service"
    assert rows["lina-cli"]["findings"] == ["token_inactive"]  # made 200 days ago, never used
    assert rows["lina-cli"]["last_login"] == "从未使用"
    assert rows["rogue"]["findings"] == ["token_admin", "token_not_on_roster"]
    assert rows["old-script"]["findings"] == ["token_revoked"]
    assert rows["old-script"]["role"] == "revoked" and rows["old-script"]["rights"] == "operator"
    found = doc["findings"]
    assert (found["token_admin"], found["token_inactive"], found["token_not_on_roster"],
            found["token_revoked"]) == (1, 1, 1, 1)  # fmt: skip

    exposition = parse_exposition(metrics.read_text())
    kinds = {dict(k[1])["kind"]: v for k, v in exposition.items()
             if k[0] == "sscp_account_review_findings"}  # fmt: skip
    assert set(kinds) == set(KINDS) and kinds["token_admin"] == 1

    table = review(cfg)
    assert table.returncode == 0, table.stderr
    assert "| token | #4 rogue | — | 未登记 | admin | 从未使用 |" in table.stdout
    assert "未经批准的管理员（admin）令牌；不在人员名册中" in table.stdout
    assert "- API 令牌：超过期限未使用 1 项" in table.stdout
    for out in (proc.stdout, proc.stderr, table.stdout, table.stderr, metrics.read_text()):
        for secret in (*tokens.values(), *hashes):
            assert secret not in out


def test_token_use_is_recorded_coarsely(db_url, webhook_config, make_services, clock) -> None:
    """On SQLite and MariaDB: the webhook records use once an hour; the review reads it back."""
    from sscp_ops.accounts import read_tokens

    store = make_services(webhook_config(database=db_url)).store
    token = store.create_token("viewer", "grafana")

    def last_used() -> dt.datetime | None:
        from webhook.store import api_tokens

        with store.engine.connect() as conn:
            return conn.execute(api_tokens.select()).one().last_used_at

    assert last_used() is None
    assert store.verify_token(token) is not None
    first = last_used()
    assert first == clock()
    clock.advance(600)  # within the hour: no write per request
    store.verify_token(token)
    assert last_used() == first
    clock.advance(3600)
    store.verify_token(token)
    assert last_used() == clock()
    assert store.verify_token("sscp_not-a-token") is None
    (record,) = read_tokens(db_url)
    assert (record.name, record.role, record.use_recorded) == ("grafana", "viewer", True)
    assert record.last_used_at == clock() and record.revoked_at is None


def test_store_without_use_column_and_missing_store(tmp_path: Path) -> None:
    cfg = AccountReviewConfig.model_validate({"inactive_days": 30})
    now = dt.datetime(2026, 11, 28, tzinfo=dt.UTC)
    old = TokenRecord(1, "x", "viewer", now - dt.timedelta(days=400), None, None, False)
    (row,) = review_tokens([old], cfg, now)
    assert row.findings == ["token_not_on_roster"] and row.last_login == "未记录"
    # no store file: tokens are not reviewed (and no empty SQLite file is created)
    missing = tmp_path / "none.yml"
    missing.write_text(f"webhook: {{database: 'sqlite:///{tmp_path / 'nope.db'}'}}\n")
    proc = review(missing, "--format", "json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["accounts"] == []
    assert "no webhook store" in proc.stderr and not (tmp_path / "nope.db").exists()
