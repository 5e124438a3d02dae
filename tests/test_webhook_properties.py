"""Property: no input makes the webhook answer 5xx while its store is up, and every 4xx is JSON
(a 400 names the field). Hypothesis drives ``POST /api/v1/alerts`` and the tickets API (lists
with limit/offset/filters, transitions, comments, vulnerabilities, changes, problems) through
the real app on SQLite, and a shorter run on the real MariaDB (where column sizes, dates and
character sets are enforced)."""

from __future__ import annotations

import json
import os

import pytest
from fx_webhook import AM_TOKEN, payload
from fx_webhook import bearer as auth
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

#: Examples per property: bounded so the file runs in seconds (SQLite) and MariaDB is short;
#: WEBHOOK_PROPERTY_SCALE=10 searches ten times as long.
_SCALE = int(os.environ.get("WEBHOOK_PROPERTY_SCALE", "1"))
EXAMPLES = {"sqlite": 150 * _SCALE, "mariadb": 40 * _SCALE}
AM = auth(AM_TOKEN)
BASE = payload("firing-hostdown.json")


def _settings(n: int):
    return settings(
        max_examples=n,
        deadline=None,
        database=None,
        suppress_health_check=[
            HealthCheck.function_scoped_fixture,
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
        ],
    )


# -- strategies -------------------------------------------------------------------------------
#: Any code point, lone surrogates included (json.dumps sends them as \udXXX escapes).
chars = st.characters(codec=None, exclude_categories=())
short_text = st.text(chars, max_size=20)
#: Text up to and past the columns' sizes (VARCHAR 16..500, TEXT 64 KB, key 64).
long_text = st.builds(
    lambda c, n: c * n,
    st.sampled_from(["x", "长", "😀", "\x00", " "]),
    st.sampled_from([0, 1, 17, 65, 201, 256, 501, 16384, 70000]),
)
text = st.one_of(short_text, long_text)
years = st.sampled_from([1, 999, 1000, 1970, 2026, 2026, 2026, 9998, 9999])
offsets = st.sampled_from(["Z", "+00:00", "+01:00", "-01:00", "+14:00", "-12:00", "", "+8"])
#: Mostly well-formed RFC 3339, at and past the calendar's edges, with offsets.
timestamps = st.one_of(
    st.builds(
        lambda y, mo, d, h, f, o: f"{y:04d}-{mo:02d}-{d:02d}T{h:02d}:59:59{f}{o}",
        years,
        st.sampled_from([1, 2, 12]),
        st.sampled_from([1, 28, 31]),
        st.sampled_from([0, 23]),
        st.sampled_from(["", ".5", ".123456789"]),
        offsets,
    ),
    st.just("0001-01-01T00:00:00Z"),
    st.just("2026-11-28T21:09:55Z"),
    short_text,
)
scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), text)
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(short_text, inner, max_size=3)
    ),
    max_leaves=8,
)
labels = st.dictionaries(
    st.one_of(st.sampled_from(["alertname", "severity", "instance", "job", "target"]), text),
    st.one_of(text, st.sampled_from(["critical", "Critical", "page", "info", ""])),
    max_size=6,
)


@st.composite
def alert(draw):
    out = {
        "status": draw(st.sampled_from(["firing", "firing", "resolved", "Firing"])),
        "labels": draw(labels),
        "annotations": draw(st.dictionaries(st.sampled_from(["summary", "description"]), text)),
        "startsAt": draw(timestamps),
        "endsAt": draw(timestamps),
        "fingerprint": draw(st.one_of(text, st.integers(), st.none())),
        "generatorURL": draw(text),
    }
    if draw(st.integers(0, 3)) == 0:  # a wrong type or a missing field now and then
        out[draw(st.sampled_from(sorted(out)))] = draw(json_values)
    if draw(st.integers(0, 5)) == 0:
        del out[draw(st.sampled_from(sorted(out)))]
    return out


@st.composite
def notification(draw):
    body = dict(BASE)
    body["alerts"] = draw(st.lists(st.one_of(alert(), st.just(BASE["alerts"][0])), max_size=4))
    for key in draw(st.sets(st.sampled_from(["groupKey", "commonLabels", "version"]), max_size=2)):
        body[key] = draw(json_values)
    return body


raw_bodies = st.one_of(
    st.binary(max_size=64),
    st.integers(1, 200_000).map(lambda n: b"[" * n + b"]" * n),
    st.just(b'{"version": "4", "alerts": [{"labels": {"a": "\\ud800"}}]}'),
)


def check(r) -> None:
    """The property: no 5xx; a 4xx is JSON with an error, a 400 also names the field."""
    assert r.status_code < 500, (r.status_code, r.get_data(as_text=True)[:500])
    if r.status_code >= 400:
        data = r.get_json(silent=True)
        assert isinstance(data, dict) and data.get("error"), r.get_data(as_text=True)[:300]
        if r.status_code == 400:
            assert isinstance(data.get("field"), str) and data["field"], data


@pytest.fixture
def hostile(db_url, webhook_config, make_services):
    from webhook.app import create_app

    svc = make_services(webhook_config(database=db_url))
    app = create_app(svc.config, svc)
    client = app.test_client()
    kind = "sqlite" if db_url.startswith("sqlite") else "mariadb"
    tokens = {r: svc.store.create_token(r, f"prop-{r}") for r in ("viewer", "operator", "admin")}
    assert client.post("/api/v1/alerts", json=BASE, headers=AM).status_code == 200
    return client, tokens, EXAMPLES[kind], svc


def test_alert_bodies_never_5xx(hostile):
    client, _tokens, n, svc = hostile

    @_settings(n)
    @given(body=st.one_of(notification(), raw_bodies))
    def prop(body):
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        check(client.post("/api/v1/alerts", data=data, headers=AM))

    prop()
    assert svc.store.count_tickets() >= 1


list_params = st.dictionaries(
    st.sampled_from(["limit", "offset", "status", "kind", "since", "until"]),
    st.one_of(
        st.integers(-(2**70), 2**70).map(str),
        timestamps.filter(lambda t: t.encode("utf-8", "ignore").decode() == t),
        st.sampled_from(["open", "open,resolved", "nope", "", "-1", "1e3", "%ED%A0%80"]),
        st.text(max_size=20),  # a URL carries no lone surrogate
    ),
)
actions = st.sampled_from(["ack", "resolve", "close", "comments"])
bodies = st.one_of(
    st.dictionaries(
        st.sampled_from(
            [
                "note",
                "assignee",
                "body",
                "risk",
                "title",
                "target",
                "description",
                "labels",
                "status",
                "fixed_at",
                "found_at",
                "external_key",
                "reason",
                "planned_start",
                "planned_end",
                "executor",
                "result",
                "verification",
                "root_cause",
                "problem_id",
                "name",
                "role",
            ]
        ),
        st.one_of(
            text,
            timestamps,
            labels,
            st.sampled_from(["high", "closed", "open", "resolved", "success", "viewer"]),
            json_values,
        ),
        max_size=6,
    ),
    json_values,
)


#: Well-formed bodies of each endpoint with hostile values (these reach the store).
shaped = st.one_of(
    st.fixed_dictionaries(
        {"external_key": text, "risk": st.sampled_from(["high", "low"]), "title": text},
        optional={"description": text, "labels": labels, "found_at": timestamps, "target": text},
    ),
    st.fixed_dictionaries(
        {"title": text, "reason": text},
        optional={
            "planned_start": timestamps,
            "planned_end": timestamps,
            "verification": text,
            "executor": text,
            "problem_id": st.integers(),
        },
    ),
    st.fixed_dictionaries(
        {},
        optional={
            "note": text,
            "body": text,
            "assignee": text,
            "status": st.sampled_from(["resolved", "closed", "open", "known_error"]),
            "fixed_at": timestamps,
            "found_at": timestamps,
            "root_cause": text,
            "risk": st.sampled_from(["high", "medium"]),
            "description": text,
            "labels": labels,
        },
    ),
)
bodies = st.one_of(bodies, shaped, shaped)


def test_tickets_api_never_5xx(hostile):
    client, tokens, n, _svc = hostile
    admin = auth(tokens["admin"])

    @_settings(n)
    @given(
        params=list_params,
        tid=st.sampled_from([1, 2, 10**12]),
        action=actions,
        body=bodies,
        key=st.sampled_from(["CVE-1", "x" * 300, "长"]),
    )
    def prop(params, tid, action, body, key):
        check(client.get("/api/v1/tickets", query_string=params, headers=admin))
        data = json.dumps(body).encode()
        for method, path in (
            ("post", f"/api/v1/tickets/{tid}/{action}"),
            ("post", "/api/v1/vulnerabilities"),
            ("patch", f"/api/v1/vulnerabilities/{key}"),
            ("post", "/api/v1/changes"),
            ("patch", "/api/v1/changes/1"),
            ("patch", "/api/v1/problems/1"),
            ("post", "/api/v1/tokens"),
        ):
            r = getattr(client, method)(
                path, data=data, headers={**admin, "Content-Type": "application/json"}
            )
            check(r)
        check(client.get(f"/api/v1/tickets/{tid}", headers=admin))

    prop()
