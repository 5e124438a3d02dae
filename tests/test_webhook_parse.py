"""parse_alertmanager on bodies captured from the real Alertmanager 0.25 (see
scripts/capture-alertmanager-payloads) and on broken ones."""

from __future__ import annotations

import copy
import datetime as dt

import pytest
from fx_webhook import payload

from webhook.events import PayloadError, parse_alertmanager, parse_time

#: Dates relative to the clock: run also on a clock moved ahead (conftest.time_shift).
pytestmark = pytest.mark.dates


def test_firing_single_alert():
    [ev] = parse_alertmanager(payload("firing-hostdown.json"))
    assert ev.status == "firing"
    assert ev.alertname == "HostDown" and ev.severity == "critical"
    assert ev.target == "web1:9100"
    assert ev.summary == "主机 web1 无法访问"
    assert ev.fingerprint and len(ev.fingerprint) == 16
    assert ev.starts_at.tzinfo == dt.UTC and ev.ends_at is None
    assert ev.receiver == "sscp-ops\\.tickets"  # Alertmanager escapes the receiver name


def test_group_of_two_and_resolved():
    firing = parse_alertmanager(payload("firing-diskfull.json"))
    resolved = parse_alertmanager(payload("resolved-diskfull.json"))
    assert len(firing) == 2 and len(resolved) == 2
    assert {e.labels["mountpoint"] for e in firing} == {"/", "/var"}
    assert [e.fingerprint for e in firing] == [e.fingerprint for e in resolved]
    assert [e.starts_at for e in firing] == [e.starts_at for e in resolved]
    assert all(e.status == "resolved" and e.ends_at > e.starts_at for e in resolved)


def test_group_mode_one_event_per_notification():
    [ev] = parse_alertmanager(payload("firing-diskfull.json"), per="group")
    assert ev.summary.endswith("等 2 条告警")
    assert ev.target == "db1:9100"
    [again] = parse_alertmanager(payload("firing-diskfull.json"), per="group")
    assert again.fingerprint == ev.fingerprint


def test_unknown_fields_ignored_optional_fields_absent():
    body = payload("firing-hostdown.json")
    body["somethingNew"] = {"x": 1}
    body["alerts"][0]["future"] = True
    body.pop("truncatedAlerts", None)
    body.pop("groupLabels")
    assert len(parse_alertmanager(body)) == 1


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda b: b.pop("version"), "version"),
        (lambda b: b.pop("alerts"), "alerts"),
        (lambda b: b["alerts"][0].pop("labels"), "alerts[0].labels"),
        (lambda b: b["alerts"][0].pop("startsAt"), "alerts[0].startsAt"),
        (lambda b: b["alerts"][0].pop("status"), "alerts[0].status"),
        (lambda b: b["alerts"][0].update(startsAt="yesterday"), "alerts[0].startsAt"),
        (lambda b: b.update(version="3"), "version"),
    ],
)
def test_missing_or_bad_field_is_named(mutate, field):
    body = copy.deepcopy(payload("firing-hostdown.json"))
    mutate(body)
    with pytest.raises(PayloadError) as err:
        parse_alertmanager(body)
    assert err.value.field == field


def test_go_nanosecond_times():
    t = parse_time("2026-11-28T21:00:00.123456789+08:00", "x")
    assert t == dt.datetime(2026, 11, 28, 13, 0, 0, 123456, tzinfo=dt.UTC)
    assert parse_time("0001-01-01T00:00:00Z", "x") is None
