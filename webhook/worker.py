"""The notice worker: delivers the outbox with retry and backoff, and runs the periodic jobs
(escalation after 15 minutes, the Watchdog heartbeat check, reconciliation with Alertmanager).

It runs as its own process (``sscp-ops webhook worker``, started by ``sscp-ops webhook``) so a
crash of one never takes the other down; everything it knows is in the store, so ``kill -9`` at
any point loses nothing: a claimed notice whose lease ran out is delivered again under the same
id, which the provider uses to drop the duplicate.

Inside the process each job is a loop in a thread of its own (:meth:`Worker.run`): the
periodic jobs (escalation, heartbeat check, liveness), reconciliation, the SQLite checkpoints,
and one delivery loop per channel, so a hung SMS provider delays neither a robot message nor an
escalation. No exception ends a loop: it is logged, counted and retried with a backoff, and the
main thread restarts a loop thread that ended anyway. After each pass of the periodic jobs the
worker records its liveness in the store (``worker_status``), which ``/healthz`` and
``sscp_webhook_worker_*`` read: a worker that cannot write (store full, read-only, gone) goes
stale there within ``webhook.worker_timeout``.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import logging
import os
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass

import requests

from sscp_ops.config.webhook import ROBOT_TIMEOUT, WebhookConfig
from sscp_ops.masking import mask_phone, mask_text
from webhook.notices import (
    Delivery,
    PermanentError,
    Planner,
    TemporaryError,
    build_senders,
    digest_text,
    render_ack_link,
)
from webhook.store import Store, StoreUnavailable

log = logging.getLogger("webhook.worker")

#: Seconds between SQLite checkpoints: at 500 notifications/s the WAL grows ~12 000 pages a
#: second, and the part copied under the write lock grows with the interval.
CHECKPOINT_INTERVAL = 0.25

#: Give up on a notice this long after it was queued (then it counts as failed).
GIVE_UP_AFTER = dt.timedelta(hours=24)

#: The longest wait of a failing loop before its next try (it doubles from its interval).
MAX_LOOP_BACKOFF = 30.0

#: The setting where the worker records its liveness (read by /healthz and /metrics).
STATUS_SETTING = "worker_status"

#: Notices one delivery pass claims; a pass that handled this many runs again at once.
BATCH = 20

#: Channels with a delivery loop of their own; any other channel shares one more loop.
CHANNELS = ("sms", "wecom", "dingtalk")


def backoff(attempt: int) -> float:
    """5 s, 10 s, 20 s ... capped at 10 minutes."""
    return float(min(5 * 2 ** max(0, attempt - 1), 600))


class Worker:
    def __init__(
        self,
        store: Store,
        config: WebhookConfig,
        senders: dict | None = None,
        planner: Planner | None = None,
        lease: float = 60.0,
        session: requests.Session | None = None,
    ) -> None:
        self.store = store
        self.config = config
        self.senders = senders if senders is not None else build_senders(config)
        self.planner = planner or Planner(config, store.clock)
        self.lease = lease
        self.session = session or requests.Session()
        self._last_reconcile: dt.datetime | None = None
        #: Exceptions caught in the loops since the worker started, and each loop's last
        #: successful pass (written to the store by record_alive).
        self.errors = 0
        self._loop_ok: dict[str, dt.datetime] = {}
        self._state_lock = threading.Lock()

    # -- delivery ---------------------------------------------------------------------------
    def _sender(self, channel: str, recipient: str):
        return self.senders.get((channel, recipient)) or self.senders.get((channel, "*"))

    def _sms_wait(self, phone: str) -> float:
        """Seconds until ``phone`` may get another SMS under the per-number limits."""
        now = self.store.clock()
        wait = 0.0
        longest = max((lim.seconds for lim in self.config.sms.limits), default=0)
        if not longest:
            return 0.0
        sent = sorted(self.store.sms_sent_times(phone, longest))
        for lim in self.config.sms.limits:
            window = [t for t in sent if t >= now - dt.timedelta(seconds=lim.seconds)]
            if len(window) >= lim.count:
                oldest = window[-lim.count]
                wait = max(wait, (oldest + dt.timedelta(seconds=lim.seconds) - now).total_seconds())
        return wait

    def deliver_due(
        self, limit: int = BATCH, channels: tuple[str, ...] | None = None, exclude: tuple = ()
    ) -> int:
        """Deliver what is due (of ``channels`` when given, never of ``exclude``); returns how
        many notices were handled."""
        handled = 0
        for notice in self.store.claim_notices(limit, self.lease, channels, exclude):
            handled += 1
            self._deliver(notice)
        return handled

    def _with_links(self, notices: list[dict]) -> list[str]:
        """The notices' texts with their acknowledge links put in: minted now, for this send
        (the store keeps only the links' hashes, never a text with a link in it)."""
        wanted = [n for n in notices if n.get("ack_contact") and n.get("ticket_id") is not None]
        tokens = iter(
            self.store.mint_ack_links([(n["ticket_id"], n["ack_contact"]) for n in wanted])
        )
        return [
            render_ack_link(n["body"], next(tokens)) if n in wanted else n["body"] for n in notices
        ]

    def send_budget(self, channel: str) -> float:
        """The longest one send on ``channel`` can take: connect plus read timeout."""
        if channel == "sms" and self.config.sms.backend != "log":
            return 2 * getattr(self.config.sms, self.config.sms.backend).timeout + 1
        if channel in ("wecom", "dingtalk"):
            return 2 * ROBOT_TIMEOUT + 1
        return 1.0

    def _deliver(self, notice: dict) -> None:
        kv = {"id": notice["id"], "channel": notice["channel"], "attempt": notice["attempts"]}
        text = notice["body"]
        # Renewed right before the send, for as long as the send may take: a batch that ran
        # past its lease while earlier sends were slow is not sent by two workers.
        if not self.store.renew_claim(notice, max(self.lease, self.send_budget(notice["channel"]))):
            log.warning("claim taken over by another worker, not sent", extra={"kv": kv})
            return
        if notice["channel"] == "sms":
            kv["to"] = mask_phone(notice["recipient"])
            wait = self._sms_wait(notice["recipient"])
            if wait > 0:
                self.store.defer_notice(notice, self.store.clock() + dt.timedelta(seconds=wait))
                log.info("rate limited, deferred", extra={"kv": {**kv, "wait": round(wait, 1)}})
                return
            # Fold the backlog only into a notice the limit held back, on its first attempt.
            held = notice["next_attempt_at"] > notice["created_at"]
            merged = self.store.merge_pending(notice, fold=held and notice["attempts"] == 1)
            bodies = self._with_links([notice, *merged])
            text = bodies[0]
            if merged:
                text = digest_text(bodies, self.config.sms.max_length)
                kv["merged"] = len(merged)
        sender = self._sender(notice["channel"], notice["recipient"])
        if sender is None:
            self.store.mark_failed(notice, "no sender for this channel")
            log.error("no sender", extra={"kv": kv})
            return
        try:
            sender.send(Delivery(str(notice["id"]), notice["channel"], notice["recipient"], text))
        except TemporaryError as exc:
            if self.store.clock() - notice["created_at"] > GIVE_UP_AFTER:
                self.store.mark_failed(notice, f"gave up: {exc}")
                log.error("delivery failed for good", extra={"kv": {**kv, "err": str(exc)}})
            else:
                delay = backoff(notice["attempts"])
                self.store.mark_retry(notice, str(exc), delay)
                log.warning(
                    "delivery failed, retrying",
                    extra={"kv": {**kv, "err": str(exc), "retry_in": delay}},
                )
            return
        except PermanentError as exc:
            self.store.mark_failed(notice, str(exc))
            log.error("delivery refused", extra={"kv": {**kv, "err": str(exc)}})
            return
        if self.store.mark_sent(notice):
            log.info("delivered", extra={"kv": kv})
        else:
            log.warning("delivered, but the claim was taken over meanwhile", extra={"kv": kv})

    # -- periodic jobs ----------------------------------------------------------------------
    def escalate(self) -> list[int]:
        return self.store.escalate_due(
            self.config.escalate_after, self.planner, self.config.faults.is_fault
        )

    def check_heartbeat(self) -> bool:
        """Queue one "monitoring pipeline down" notice per heartbeat outage."""
        started = self.store.setting_once("worker_started_at", lambda: _iso(self.store.clock()))
        last_text = self.store.get_setting("heartbeat_at") or started
        last = dt.datetime.fromisoformat(last_text)
        if (self.store.clock() - last).total_seconds() <= self.config.heartbeat_timeout:
            return False
        queued = self.store.queue_once(
            "pipeline_down_for", last_text, self.planner.pipeline_down(last)
        )
        if queued:
            log.warning(
                "no heartbeat: pipeline down notice queued", extra={"kv": {"last": last_text}}
            )
        return queued

    def reconcile(self) -> list[int]:
        """Resolve incidents whose alert is gone from Alertmanager (silenced, then resolved)."""
        url = self.config.alertmanager_url
        if not url:
            return []
        resp = self.session.get(
            f"{url.rstrip('/')}/api/v2/alerts",
            params={
                "active": "true",
                "silenced": "true",
                "inhibited": "true",
                "unprocessed": "true",
            },
            timeout=10,
        )
        resp.raise_for_status()
        active = {a["fingerprint"] for a in resp.json()}
        done = self.store.reconcile(active, grace=self.config.reconcile_interval)
        if done:
            log.info("reconciled", extra={"kv": {"resolved": len(done)}})
        return done

    def reconcile_if_due(self) -> None:
        now = self.store.clock()
        interval = dt.timedelta(seconds=self.config.reconcile_interval)
        if self._last_reconcile is None or now - self._last_reconcile >= interval:
            self._last_reconcile = now
            try:
                self.reconcile()
            except (requests.RequestException, ValueError, KeyError) as exc:
                log.warning("reconciliation failed", extra={"kv": {"err": type(exc).__name__}})

    def jobs(self) -> int:
        """One pass of the periodic jobs, then the liveness record; returns 0 (idle)."""
        self.escalate()
        self.check_heartbeat()
        self.record_alive()
        return 0

    def record_alive(self) -> None:
        """Write the liveness record: when this pass succeeded, the errors counted since the
        worker started, and the last success of each loop."""
        now = self.store.clock()
        with self._state_lock:
            self._loop_ok["jobs"] = now
            status = {
                "at": _iso(now),
                "host": socket.gethostname(),
                "pid": os.getpid(),
                "errors": self.errors,
                "loops": {name: _iso(t) for name, t in sorted(self._loop_ok.items())},
            }
        self.store.set_setting(STATUS_SETTING, json.dumps(status, sort_keys=True))

    def run_once(self) -> None:
        """Every job once, one after the other (tests; ``run`` runs them side by side)."""
        self.deliver_due()
        self.jobs()
        self.reconcile_if_due()

    def checkpoint(self) -> int:
        self.store.checkpoint()
        return 0

    def checkpoints(self, stop: threading.Event, interval: float = CHECKPOINT_INTERVAL) -> None:
        """SQLite: checkpoint the WAL every ``interval`` seconds until ``stop`` (the loop of
        :meth:`run` that does it; failures are retried, never fatal)."""
        self._loop("checkpoint", self.checkpoint, stop, interval)

    def loops(self, interval: float = 1.0) -> dict[str, tuple[Callable[[], int], float]]:
        """Each loop of :meth:`run`: name -> (one pass, seconds between idle passes)."""
        batch = functools.partial(self.deliver_due, BATCH)
        loops: dict[str, tuple[Callable[[], int], float]] = {
            "jobs": (self.jobs, interval),
            "reconcile": (lambda: self.reconcile_if_due() or 0, interval),
            "checkpoint": (self.checkpoint, CHECKPOINT_INTERVAL),
        }
        for channel in CHANNELS:
            loops[f"deliver:{channel}"] = (functools.partial(batch, (channel,)), interval)
        loops["deliver:other"] = (functools.partial(batch, None, CHANNELS), interval)
        return loops

    def _loop(
        self, name: str, step: Callable[[], int], stop: threading.Event, interval: float
    ) -> None:
        """Run ``step`` until ``stop``: again at once while it has more to do (it returned a
        full batch), after ``interval`` when idle, and after a doubling backoff (up to
        MAX_LOOP_BACKOFF) while it fails. No exception ends the loop."""
        failures = 0
        while not stop.is_set():
            try:
                busy = step()
            except Exception as exc:  # noqa: BLE001 - the loop must outlive every error
                failures += 1
                self._count_error(name, exc, failures)
                stop.wait(min(interval * 2**failures, MAX_LOOP_BACKOFF))
                continue
            failures = 0
            with self._state_lock:
                self._loop_ok[name] = self.store.clock()
            if busy < BATCH:
                stop.wait(interval)

    def _count_error(self, loop: str, exc: Exception, failures: int) -> None:
        with self._state_lock:
            self.errors += 1
        # The driver's message, not SQLAlchemy's (which carries the statement's parameters:
        # SMS texts, phone numbers), masked all the same.
        text = mask_text(str(getattr(exc, "orig", None) or exc))[:200]
        kv = {"loop": loop, "err": type(exc).__name__, "detail": text, "failures": failures}
        if isinstance(exc, StoreUnavailable):
            log.warning("store unavailable", extra={"kv": kv})
        else:
            log.error("loop failed", extra={"kv": kv}, exc_info=failures == 1)

    def run(self, stop: threading.Event, interval: float = 1.0) -> None:
        """Run every loop in a thread of its own until ``stop``; a loop thread that ended
        (it should not) is started again."""
        log.info("worker started")
        loops = self.loops(interval)
        threads: dict[str, threading.Thread] = {}
        while True:
            for name, (step, every) in loops.items():
                thread = threads.get(name)
                if thread is None or not thread.is_alive():
                    if thread is not None:
                        log.error("loop thread ended, restarting", extra={"kv": {"loop": name}})
                    thread = threading.Thread(
                        target=self._loop,
                        args=(name, step, stop, every),
                        name=f"worker-{name}",
                        daemon=True,
                    )
                    thread.start()
                    threads[name] = thread
            if stop.wait(interval):
                break
        for thread in threads.values():
            thread.join(2 * ROBOT_TIMEOUT + 2)
        log.info("worker stopped")


@dataclass(frozen=True)
class WorkerStatus:
    """The liveness record a worker writes after each pass of its periodic jobs."""

    at: dt.datetime
    errors: int
    loops: dict[str, dt.datetime]
    host: str = ""
    pid: int = 0

    @classmethod
    def read(cls, store: Store) -> WorkerStatus | None:
        """The last record in the store; None when no worker ever wrote one (or it is
        unreadable, which a worker's next pass repairs)."""
        text = store.get_setting(STATUS_SETTING)
        if not text:
            return None
        try:
            data = json.loads(text)
            return cls(
                at=dt.datetime.fromisoformat(data["at"]),
                errors=int(data.get("errors", 0)),
                loops={k: dt.datetime.fromisoformat(v) for k, v in data.get("loops", {}).items()},
                host=str(data.get("host", "")),
                pid=int(data.get("pid", 0)),
            )
        except (ValueError, KeyError, TypeError, AttributeError):
            return None

    def alive(self, now: dt.datetime, timeout: float) -> bool:
        return (now - self.at).total_seconds() <= timeout


def _iso(t: dt.datetime) -> str:
    return t.astimezone(dt.UTC).isoformat()
