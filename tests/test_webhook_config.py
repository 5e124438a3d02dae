"""The ``webhook:`` config section: defaults, and bad files named by file:line: key.path."""

from __future__ import annotations

import pytest

from sscp_ops.config import ConfigError, parse_config


def test_defaults():
    cfg = parse_config("").webhook
    assert cfg.database == "sqlite:///var/tickets.db"
    assert cfg.listen_address == "127.0.0.1:9811"
    assert cfg.sms.backend == "log"
    assert (cfg.reopen_window, cfg.escalate_after, cfg.heartbeat_timeout) == (3600, 900, 300)
    assert [(lim.count, lim.seconds) for lim in cfg.sms.limits] == [(1, 30), (5, 3600)]
    assert cfg.max_body_bytes == 1024 * 1024
    assert parse_config("").alertmanager.email is None


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("webhook:\n  database: postgres://x/y\n", "<t>:2: webhook.database"),
        ("webhook:\n  sms:\n    backend: http\n", "<t>:2: webhook.sms: sms.backend http needs"),
        (
            "webhook:\n  roster:\n    shifts:\n      - primary: {name: a, phone: abc}\n",
            "<t>:4: webhook.roster.shifts[0].primary.phone",
        ),
        ("webhook:\n  robots:\n    - {name: r, kind: wecom}\n", "<t>:3: webhook.robots[0]"),
        ("webhook:\n  roster:\n    rotation: month\n", "<t>:3: webhook.roster.rotation"),
        ("webhook:\n  unknown: 1\n", "<t>:2: webhook.unknown: unknown key"),
        ("webhook:\n  max_body_bytes: 1000\n", "<t>:2: webhook.max_body_bytes: input should be"),
        (
            "alertmanager:\n  email: {to: [], sender: a@b.cn, smarthost: 'm:25'}\n",
            "<t>:2: alertmanager.email.to",
        ),
        (
            "alertmanager:\n  email: {to: [x@b.cn], sender: a@b.cn, smarthost: m}\n",
            "<t>:2: alertmanager.email.smarthost",
        ),
        (
            "alertmanager:\n  email: {to: [x@b.cn], sender: a@b.cn, smarthost: 'm:25',\n"
            "    auth_password_file: /p}\n",
            "<t>:2: alertmanager.email: a password needs auth_username",
        ),
    ],
)
def test_bad_values_are_named(text, where):
    with pytest.raises(ConfigError) as err:
        parse_config(text, "<t>")
    assert str(err.value).startswith(where)


def test_database_password_from_file(tmp_path):
    secret = tmp_path / "db.pass"
    secret.write_text("s3cr@t/pw\n")
    cfg = parse_config(
        f"webhook:\n  database: mysql+pymysql://itss@db1:3306/itss\n"
        f"  database_password_file: {secret}\n"
    ).webhook
    assert cfg.database_url() == "mysql+pymysql://itss:s3cr%40t%2Fpw@db1:3306/itss"
    assert "s3cr" not in repr(cfg)
