#!/usr/bin/env python3
"""Per-notification cost of the ticket webhook in ONE thread, in process (no HTTP, no gunicorn).

Posts notifications shaped as in ``webhook_load.py`` (5 alerts, 30 % repeats of an earlier
notification) through Flask's test client to an app on a temporary SQLite store, and prints
per notification: wall and CPU time, SQL statements SQLite ran, and how long the
store's write lock was held (the part that SQLite serialises across gunicorn workers). The
reference in the same run is the same test client posting to a route that only parses the JSON.
Less noisy than the load test on a shared machine (CPU time, one thread), so it is the figure to
compare when changing the hot path:

    .venv/bin/python benchmarks/webhook_inprocess.py [--notifications 2000]
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

from flask import request
from sqlalchemy import event

sys.path.insert(0, str(Path(__file__).resolve().parent))
from webhook_load import TOKEN, notification  # noqa: E402

from sscp_ops.config.webhook import WebhookConfig  # noqa: E402
from webhook.app import create_app  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--notifications", type=int, default=2000)
    ap.add_argument("--duplicates", type=float, default=0.30)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="webhook-inprocess-"))
    (tmp / "am.token").write_text(TOKEN)
    config = WebhookConfig.model_validate(
        {
            "database": f"sqlite:///{tmp / 'tickets.db'}",
            "alertmanager_token_file": str(tmp / "am.token"),
            "roster": {"shifts": [{"primary": {"name": "值班", "phone": "13800000001"}}]},
            "sms": {"backend": "log"},
        }
    )
    app = create_app(config)

    @app.post("/bench/null")
    def _null():
        request.get_json(force=True)
        return {"received": 5}

    store = app.extensions["sscp_webhook"].store
    statements = [0]

    def count(_sql: str) -> None:
        statements[0] += 1

    # Statements as SQLite runs them (the hot path bypasses SQLAlchemy's execute events);
    # executemany counts once per row. New pooled connections get the callback.
    event.listen(store.engine, "connect", lambda conn, _rec: conn.set_trace_callback(count))
    store.engine.dispose()
    held = [0.0]
    write_lock = store._write_lock

    @contextmanager
    def timed_lock():
        with write_lock():
            t0 = time.perf_counter()
            try:
                yield
            finally:
                held[0] += time.perf_counter() - t0

    store._write_lock = timed_lock
    rng = random.Random(1)
    bodies, seq = [], 0
    while len(bodies) < args.notifications + 100:
        if seq and rng.random() < args.duplicates:
            bodies.append(notification(1, rng.randrange(seq)))
        else:
            bodies.append(notification(1, seq))
            seq += 1
    client = app.test_client()
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {TOKEN}"}

    def run(path: str, batch: list[bytes]) -> tuple[float, float]:
        w0, c0 = time.perf_counter(), time.process_time()
        for body in batch:
            if client.post(path, data=body, headers=headers).status_code != 200:
                raise SystemExit(f"{path}: non-200 answer")
        n = len(batch)
        return (time.perf_counter() - w0) / n * 1000, (time.process_time() - c0) / n * 1000

    run("/api/v1/alerts", bodies[:100])  # warm up: statement cache, connection pool
    statements[0], held[0] = 0, 0.0
    wall, cpu = run("/api/v1/alerts", bodies[100:])
    n = args.notifications
    ref_wall, ref_cpu = run("/bench/null", bodies[100:])
    print(
        f"{n} notifications x 5 alerts, {args.duplicates:.0%} repeats, 1 thread, SQLite WAL\n"
        f"   null route: {ref_wall:.2f} ms wall, {ref_cpu:.2f} ms CPU per notification\n"
        f"     sscp-ops: {wall:.2f} ms wall, {cpu:.2f} ms CPU per notification, "
        f"{statements[0] / n:.1f} SQL statements run, write lock held {held[0] / n * 1000:.2f} ms\n"
        f"ratio sscp-ops / null route: {cpu / ref_cpu:.1f}x CPU"
    )
    store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
