"""The notice worker: delivers the outbox with retry and backoff, and runs the periodic jobs
(escalation after 15 minutes, the Watchdog heartbeat check, reconciliation with Alertmanager).

It runs as its own process (``sscp-ops webhook worker``, started by ``sscp-ops webhook``) so a
crash of one never takes the other down; everything it knows is in the store, so ``kill -9`` at
any point loses nothing: a claimed notice whose lease ran out is delivered again under the same
id, which the provider uses to drop the duplicate.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading

import requests

from sscp_ops.config.webhook import WebhookConfig
from sscp_ops.masking import mask_phone
from webhook.notices import (
    Delivery,
    PermanentError,
    Planner,
    TemporaryError,
    build_senders,
    digest_text,
)
from webhook.store import Store, StoreUnavailable

log = logging.getLogger("webhook.worker")

#: Seconds between SQLite checkpoints: at 500 notifications/s the WAL grows ~12 000 pages a
#: second, and the part copied under the write lock grows with the interval.
CHECKPOINT_INTERVAL = 0.25

#: Give up on a notice this long after it was queued (then it counts as failed).
GIVE_UP_AFTER = dt.timedelta(hours=24)


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

    def deliver_due(self, limit: int = 20) -> int:
        """Deliver what is due; returns how many notices were handled."""
        handled = 0
        for notice in self.store.claim_notices(limit, self.lease):
            handled += 1
            self._deliver(notice)
        return handled

    def _deliver(self, notice: dict) -> None:
        kv = {"id": notice["id"], "channel": notice["channel"], "attempt": notice["attempts"]}
        text = notice["body"]
        if notice["channel"] == "sms":
            kv["to"] = mask_phone(notice["recipient"])
            wait = self._sms_wait(notice["recipient"])
            if wait > 0:
                self.store.defer_notice(
                    notice["id"], self.store.clock() + dt.timedelta(seconds=wait)
                )
                log.info("rate limited, deferred", extra={"kv": {**kv, "wait": round(wait, 1)}})
                return
            # Fold the backlog only into a notice the limit held back, on its first attempt.
            held = notice["next_attempt_at"] > notice["created_at"]
            merged = self.store.merge_pending(notice, fold=held and notice["attempts"] == 1)
            if merged:
                bodies = [notice["body"], *(m["body"] for m in merged)]
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
        self.store.mark_sent(notice)
        log.info("delivered", extra={"kv": kv})

    # -- periodic jobs ----------------------------------------------------------------------
    def escalate(self) -> list[int]:
        return self.store.escalate_due(self.config.escalate_after, self.planner)

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

    def run_once(self) -> None:
        self.deliver_due()
        self.escalate()
        self.check_heartbeat()
        now = self.store.clock()
        interval = dt.timedelta(seconds=self.config.reconcile_interval)
        if self._last_reconcile is None or now - self._last_reconcile >= interval:
            self._last_reconcile = now
            try:
                self.reconcile()
            except (requests.RequestException, ValueError, KeyError) as exc:
                log.warning("reconciliation failed", extra={"kv": {"err": type(exc).__name__}})

    def checkpoints(self, stop: threading.Event, interval: float = CHECKPOINT_INTERVAL) -> None:
        """SQLite: checkpoint the WAL every ``interval`` seconds (Store.checkpoint), in a
        thread of its own so a slow SMS gateway never delays it."""
        while not stop.wait(interval):
            try:
                self.store.checkpoint()
            except StoreUnavailable as exc:
                log.warning("checkpoint failed", extra={"kv": {"err": str(exc)[:200]}})

    def run(self, stop: threading.Event, interval: float = 1.0) -> None:
        log.info("worker started")
        threading.Thread(target=self.checkpoints, args=(stop,), daemon=True).start()
        while not stop.is_set():
            try:
                self.run_once()
            except StoreUnavailable as exc:
                log.warning("store unavailable", extra={"kv": {"err": str(exc)[:200]}})
            stop.wait(interval)
        log.info("worker stopped")


def _iso(t: dt.datetime) -> str:
    return t.astimezone(dt.UTC).isoformat()
