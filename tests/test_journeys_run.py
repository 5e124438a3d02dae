"""Journeys against a real platform (Flask behind Nginx, tests/fx_journeys.py): a healthy run,
and a deliberately broken upgrade that breaks the right step with a clear reason."""

from __future__ import annotations

import pytest
from fx_journeys import SLOW_SECONDS, journey_yaml

from sscp_ops.config import parse_config
from sscp_ops.journeys.runner import run_journey

pytestmark = pytest.mark.slow

STEPS = ["登录页", "登录", "企业查询", "检查表单", "提交检查", "数据接口", "清理测试数据"]


def _journey(platform, password_file):
    config = parse_config("journeys:\n" + journey_yaml(platform.base, password_file))
    return config.journeys[0]


def test_healthy_platform_passes_every_step_and_cleans_up(platform, probe_password) -> None:
    result = run_journey(_journey(platform, probe_password))

    assert [(s.name, s.status, s.reason) for s in result.steps] == [
        (name, "passed", "") for name in STEPS
    ]
    assert [s.http_status for s in result.steps] == [200, 302, 200, 200, 302, 200, 204]
    assert result.success and result.failed_step is None
    assert result.run_id.startswith("sscp-probe-")
    assert 0 < result.seconds < 5
    assert platform.leftovers() == []  # the clean-up step deleted what the journey created
    assert platform.state.next_id == 2  # and it did create one inspection


@pytest.mark.parametrize(
    ("breaks", "step", "reason", "skipped", "cleaned"),
    [
        # The login form's field was renamed: the POST lands back on the form (200, not 302).
        ("renamed_field", "登录", "status 200, expected 302", STEPS[2:6], "skipped"),
        # The query now takes 2.3 s: the contract's 2 s limit.
        ("slow_search", "企业查询", "over the 2 s limit", STEPS[3:6], "skipped"),
        # The data interface lost a field other systems read.
        (
            "json_field_removed",
            "数据接口",
            "JSONPath $.result matches nothing (expected '合格')",
            [],
            "passed",
        ),
    ],
)
def test_broken_upgrade_breaks_the_right_step(
    platform, probe_password, breaks, step, reason, skipped, cleaned
) -> None:
    platform.upgrade(breaks)
    result = run_journey(_journey(platform, probe_password))

    assert not result.success
    failed = result.failed_step
    assert failed is not None and failed.name == step
    assert reason in failed.reason
    assert [s.name for s in result.steps if s.status == "failed"] == [step]
    assert [s.name for s in result.steps if s.status == "skipped" and s.name != "清理测试数据"] == (
        skipped
    )
    clean_up = result.steps[-1]
    assert clean_up.status == cleaned
    if breaks == "slow_search":
        assert failed.seconds >= SLOW_SECONDS and failed.http_status == 200
    assert platform.leftovers() == []
    # the password never shows in a reason
    assert all(platform_password_absent(s.reason) for s in result.steps)


def platform_password_absent(text: str) -> bool:
    from fx_journeys import PASSWORD

    return PASSWORD not in text


def test_cookies_do_not_survive_from_one_run_to_the_next(platform, probe_password) -> None:
    """Each run logs in afresh: a journey without its login step is sent back to /login."""
    text = journey_yaml(platform.base, probe_password)
    config = parse_config("journeys:\n" + text)
    first = run_journey(config.journeys[0])
    assert first.success
    search_only = config.journeys[0].model_copy(update={"steps": config.journeys[0].steps[2:3]})
    second = run_journey(search_only)
    assert second.steps[0].status == "failed"
    assert second.steps[0].reason == "status 302, expected 200"  # not followed: seen as is


def test_unreadable_secret_file_fails_the_step_naming_the_file(platform, tmp_path) -> None:
    missing = tmp_path / "nope.pass"
    result = run_journey(_journey(platform, missing))
    assert result.failed_step is not None and result.failed_step.name == "登录"
    assert (
        result.failed_step.reason == f"cannot read secret file {missing}: No such file or directory"
    )
    assert result.failed_step.http_status == 0


def test_unreachable_platform_fails_the_first_step(probe_password) -> None:
    from helpers import free_port

    base = f"http://127.0.0.1:{free_port()}"
    config = parse_config("journeys:\n" + journey_yaml(base, probe_password))
    result = run_journey(config.journeys[0])
    statuses = [s.status for s in result.steps]
    assert statuses == ["failed"] + ["skipped"] * 6
    assert "ConnectionError" in result.steps[0].reason
    assert result.steps[-1].reason.startswith("{inspection} has no value")
