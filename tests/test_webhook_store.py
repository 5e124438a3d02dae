"""The ticket store on SQLite and on the real MariaDB: idempotency under concurrency, the
incident life cycle (resolve, reopen, recurrence, problem), and migrations = table models."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import threading

import pytest
import sqlalchemy as sa
from fx_webhook import payload

from webhook.events import parse_alertmanager
from webhook.store import Notice, Store, metadata

#: Dates relative to the clock: run also on a clock moved ahead (conftest.time_shift).
pytestmark = pytest.mark.dates


@pytest.fixture
def store(db_url, clock):
    s = Store(db_url, clock=clock)
    s.migrate()
    yield s
    s.close()


def one_notice(ticket, reason):
    return [Notice("sms", "13812345678", f"{reason} #{ticket.get('id')}", reason)]


def firing():
    [ev] = parse_alertmanager(payload("firing-hostdown.json"))
    return ev


def resolved():
    [ev] = parse_alertmanager(payload("resolved-hostdown.json"))
    return ev


def test_concurrent_deliveries_make_one_ticket_and_one_notice(store):
    ev = firing()
    results = []
    barrier = threading.Barrier(12)

    def deliver():
        barrier.wait()
        results.append(store.ingest(ev, one_notice).outcome)

    threads = [threading.Thread(target=deliver) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == ["created"] + ["duplicate"] * 11
    assert store.count_tickets() == 1
    assert len(store.outbox_rows()) == 1
    assert [a["action"] for a in store.audit_rows("ticket")] == ["create"]


def test_concurrent_resolved_deliveries_resolve_once(store):
    store.ingest(firing(), one_notice)
    results = []
    threads = [
        threading.Thread(target=lambda: results.append(store.ingest(resolved(), one_notice)))
        for _ in range(8)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(r.outcome for r in results) == ["duplicate"] * 7 + ["resolved"]
    [t] = store.list_tickets()
    assert t["status"] == "resolved" and t["resolution_source"] == "alert"
    assert t["resolved_at"] == resolved().ends_at  # Alertmanager's end time, not a guess
    assert [n["reason"] for n in store.outbox_rows()] == ["new", "resolved"]


def test_reopen_within_window_then_recurrence_after(store, clock):
    first = firing()
    tid = store.ingest(first).ticket_id
    store.ingest(resolved())
    end = resolved().ends_at
    again = dataclasses.replace(first, starts_at=end + dt.timedelta(minutes=10))
    assert store.ingest(again, one_notice).outcome == "reopened"
    t = store.get_ticket(tid)
    assert t["status"] == "open" and t["reopen_count"] == 1 and t["resolved_at"] is None
    # resolved again, then fires after the 1 h window: a new incident linked as a recurrence
    store.ingest(
        dataclasses.replace(
            again, status="resolved", ends_at=again.starts_at + dt.timedelta(minutes=1)
        )
    )
    later = dataclasses.replace(first, starts_at=again.starts_at + dt.timedelta(hours=2))
    res = store.ingest(later)
    assert res.outcome == "created" and res.ticket_id != tid
    assert store.get_ticket(res.ticket_id)["recurrence_of"] == tid


@pytest.mark.parametrize(("problem_at", "opened_at"), [(2, 2), (4, 4), (1, 1)])
def test_problem_opened_at_the_configured_occurrence(store, clock, problem_at, opened_at):
    """The problem record (问题管理) opens at the ``problem_at``-th occurrence of a fault in the
    window (default 2, early: the contract's limit, 已解决故障在半年内连续发生≤3次, fails at
    the 4th); before, it opened after more than 3 recurrences, i.e. at the 5th occurrence."""
    ev = firing()
    ids = []
    for i in range(5):
        occ = dataclasses.replace(ev, starts_at=ev.starts_at + dt.timedelta(days=i))
        ids.append(store.ingest(occ, problem_at=problem_at).ticket_id)
        store.transition(ids[-1], "resolve", "token:test", "重启服务")
        assert len(store.list_problems()) == (1 if i + 1 >= opened_at else 0)
    [problem] = store.list_problems()
    assert problem["status"] == "open"
    assert problem["incidents"] == ids
    assert f"半年内发生 {opened_at} 次" in problem["title"]
    assert [a["object_id"] for a in store.audit_rows("problem")] == [problem["id"]]


def test_problem_default_is_the_second_occurrence_of_the_fault(store, clock):
    """Two series of one fault (alertname + target; e.g. two mount points): the second
    incident is the fault's second occurrence, as the report counts it."""
    ev = firing()
    store.ingest(ev)
    assert store.list_problems() == []
    tid = store.ingest(dataclasses.replace(ev, fingerprint="f" * 16)).ticket_id
    [problem] = store.list_problems()
    assert store.get_ticket(tid)["problem_id"] == problem["id"]
    assert len(problem["incidents"]) == 2


def test_occurrences_outside_the_window_do_not_count(store, clock):
    ev = firing()
    store.ingest(dataclasses.replace(ev, starts_at=ev.starts_at - dt.timedelta(days=200)))
    store.ingest(ev, problem_window=183 * 86400)
    assert store.list_problems() == []


def test_concurrent_recurrences_open_one_problem(store):
    """Eight series of one fault (same alertname and target, e.g. one per mount point), the
    fault resolved ten days ago, fire at once: every transaction sees the fault at its second
    occurrence or later and tries to open its problem; the unique open_key leaves exactly
    one, every incident linked to it, and one audit record of its creation."""
    ev = firing()
    then = ev.starts_at - dt.timedelta(days=10)
    series = [f"{i:016x}" for i in range(8)]
    store.ingest(dataclasses.replace(ev, fingerprint=series[0], starts_at=then))
    store.ingest(
        dataclasses.replace(
            ev,
            status="resolved",
            fingerprint=series[0],
            starts_at=then,
            ends_at=then + dt.timedelta(minutes=5),
        )
    )
    assert store.list_problems() == []  # the fault's first occurrence: nothing recurred
    barrier = threading.Barrier(len(series))
    outcomes, errors = [], []

    def deliver(fp: str) -> None:
        barrier.wait()
        try:
            outcomes.append(store.ingest(dataclasses.replace(ev, fingerprint=fp)).outcome)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=deliver, args=(fp,)) for fp in series]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and outcomes == ["created"] * len(series)
    [problem] = store.list_problems()
    assert len(problem["incidents"]) == store.count_tickets() == 1 + len(series)
    assert [a["object_id"] for a in store.audit_rows("problem")] == [problem["id"]]


def test_flapping_without_resolved_attaches_to_open_incident(store):
    ev = firing()
    tid = store.ingest(ev, one_notice).ticket_id
    res = store.ingest(
        dataclasses.replace(ev, starts_at=ev.starts_at + dt.timedelta(minutes=3)), one_notice
    )
    assert res.outcome == "attached" and res.ticket_id == tid
    assert len(store.outbox_rows()) == 1


def test_transitions_and_audit(store):
    tid = store.ingest(firing()).ticket_id
    store.transition(tid, "ack", "token:ops", assignee="张三")
    store.add_comment(tid, "token:ops", "正在排查 13812345678")
    store.transition(tid, "resolve", "token:ops", "已重启")
    store.transition(tid, "close", "token:ops")
    t = store.get_ticket(tid)
    assert t["status"] == "closed" and t["assignee"] == "张三"
    assert t["acknowledged_at"] <= t["resolved_at"] <= t["closed_at"]
    assert [a["action"] for a in t["audit"]] == ["create", "ack", "comment", "resolve", "close"]
    assert json.loads(t["audit"][3]["detail"])["status_from"] == "acknowledged"


def test_vulnerability_upsert_by_external_key(store, clock):
    found = dt.datetime(2026, 11, 1, 8, 0, tzinfo=dt.UTC)
    t, created = store.upsert_vulnerability(
        "scanner:CVE-2024-1:web1",
        {"risk": "high", "title": "OpenSSL 漏洞", "found_at": found},
        "token:scanner",
    )
    assert created and t["kind"] == "vulnerability"
    assert t["due_at"] == found + dt.timedelta(hours=48)
    t2, created2 = store.upsert_vulnerability(
        "scanner:CVE-2024-1:web1", {"risk": "medium", "title": "OpenSSL 漏洞"}, "token:scanner"
    )
    assert not created2 and t2["id"] == t["id"]
    assert t2["due_at"] == found + dt.timedelta(days=7)
    assert store.count_tickets() == 1


def test_migrations_match_table_models(store):
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    with store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diff == []
    from pathlib import Path

    from alembic.script import ScriptDirectory

    import webhook

    scripts = ScriptDirectory(str(Path(webhook.__file__).parent / "migrations"))
    [head] = scripts.get_heads()  # one line of revisions, no branches
    with store.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar() == head


def test_partly_repeated_notification_files_only_the_new_alerts(store):
    base = firing()
    a, b, c = (dataclasses.replace(base, fingerprint=f"fp{i}") for i in "abc")
    first = store.ingest_many([a, b], one_notice)
    assert [r.outcome for r in first] == ["created", "created"]
    second = store.ingest_many([a, b, c], one_notice)
    assert [r.outcome for r in second] == ["duplicate", "duplicate", "created"]
    assert [r.ticket_id for r in second[:2]] == [r.ticket_id for r in first]
    assert len({r.ticket_id for r in [*first, second[2]]}) == 3
    assert store.count_tickets() == 3
    assert len(store.outbox_rows()) == 3
    assert [x["action"] for x in store.audit_rows("ticket")] == ["create"] * 3
    # Fully repeated: answered from what is filed, nothing written.
    third = store.ingest_many([c, a], one_notice)
    assert [(r.outcome, r.ticket_id) for r in third] == [
        ("duplicate", second[2].ticket_id),
        ("duplicate", first[0].ticket_id),
    ]
    assert store.count_tickets() == 3 and len(store.outbox_rows()) == 3


def test_repeated_notification_does_not_wait_for_the_write_lock(store):
    if not store.url.startswith("sqlite"):
        pytest.skip("the write lock is SQLite's (MySQL has row locks)")
    ev = firing()
    created = store.ingest(ev, one_notice)
    results = []
    with store._write_lock():  # a writer holds the lock for as long as this block runs
        t = threading.Thread(target=lambda: results.append(store.ingest(ev, one_notice)))
        t.start()
        t.join(5)
        assert results == [type(created)("duplicate", created.ticket_id)]
    assert len(store.outbox_rows()) == 1


def test_reconcile_leaves_group_tickets_to_their_group(store, clock):
    """``incident_per: group``: a group's ticket has a fingerprint of its own, which no alert
    in Alertmanager has; reconciliation must not resolve it while the group still fires (it
    is resolved by the group's "resolved" notification)."""
    [group] = parse_alertmanager(payload("firing-diskfull.json"), per="group")
    tid = store.ingest(group).ticket_id
    clock.advance(3600)
    listed = {a["fingerprint"] for a in payload("firing-diskfull.json")["alerts"]}
    assert store.reconcile(listed, grace=300) == []
    assert store.get_ticket(tid)["status"] == "open"


def test_reminders_open_no_problem_record(store, clock):
    """A reminder (no fault by the webhook's ``faults`` rule) firing again and again opens no
    problem record; the same occurrences of a fault do, at the second."""
    from sscp_ops.config.webhook import FaultRule

    is_fault = FaultRule().is_fault
    ev = firing()
    reminder = dataclasses.replace(
        ev, alertname="AccountReviewOverdue", severity="warning", fingerprint="r" * 16
    )
    for alert, times in ((reminder, 4), (ev, 2)):
        for day in range(times):
            occ = dataclasses.replace(alert, starts_at=ev.starts_at + dt.timedelta(days=day))
            tid = store.ingest(occ, is_fault=is_fault).ticket_id
            store.transition(tid, "resolve", "token:test", "已处理")
        if alert is reminder:
            assert store.list_problems() == []
    [problem] = store.list_problems()
    assert problem["alertname"] == ev.alertname
