"""The exporter core: the collector contract, the scrape runner and the shared health metrics.

A *collector* is one unit of collection: a local data source (``host``) or one target of a
remote system (``redis`` target ``cache1``). At every scrape the :class:`ScrapeRunner` runs all
collectors concurrently, each in its own thread, under one deadline; a collector that raises or
overruns is reported as failed and the rest of the scrape still answers::

    sscp_exporter_collector_success{collector="host"} 1
    sscp_exporter_collector_success{collector="redis",target="cache1"} 0
    sscp_exporter_collector_duration_seconds{collector="host"} 0.0042
    sscp_exporter_build_info{pythonversion="3.11.7",version="0.1.0"} 1

Target collectors derive from :class:`TargetCollector`, which writes ``<system>_up{target}``
once for all of them and stops early when the target is unreachable.

Scrapes that overlap (two Prometheus servers of an HA pair) share collections: a scrape that
finds a collector's collection still running within that collection's deadline waits for it,
up to its own deadline, and reports its result, instead of starting a second one on the same
connection or reporting the target down.
"""

from __future__ import annotations

import abc
import copy
import logging
import platform
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import ClassVar

from prometheus_client.core import GaugeMetricFamily, Metric

from sscp_ops import __version__
from sscp_ops.config.base import SecretRef
from sscp_ops.errors import ParseError as ParseError  # re-exported for the collectors

log = logging.getLogger("exporter")


class TargetUnavailable(Exception):
    """A target cannot be reached, refused us, or rejected our credentials.

    The message is logged: it must never contain a secret.
    """


def read_password(secret: SecretRef) -> str | None:
    """The target's current secret; an unreadable ``password_file`` makes it unavailable."""
    try:
        return secret.password()
    except OSError as exc:
        raise TargetUnavailable(f"cannot read password_file: {exc.strerror}") from None


class Collector(abc.ABC):
    """One unit of collection. ``collect`` reads the source now and yields fresh metrics."""

    name: ClassVar[str]
    target: str | None = None

    @abc.abstractmethod
    def collect(self, timeout: float) -> Iterable[Metric]:
        """Read the source, spending at most ``timeout`` seconds on I/O."""

    def failure_metrics(self) -> list[Metric]:
        """What to expose when ``collect`` raised or overran its deadline."""
        return []

    def start(self) -> None:  # noqa: B027 - optional hook
        """Start background work; called once before serving. Only the journeys collector
        uses it (a journey runs on its own schedule, exporters/journeys.py says why)."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections; called once at shutdown."""


class TargetCollector(Collector):
    """A collector for one target of a remote system; exposes ``<system>_up{target}``."""

    def __init__(self, target: str) -> None:
        self.target = target

    @abc.abstractmethod
    def scrape(self, timeout: float) -> Iterable[Metric]:
        """Read the target; raise :class:`TargetUnavailable` when it cannot be reached."""

    @staticmethod
    def io_timeout(deadline: float, configured: float) -> float:
        """The time a target's I/O may take: its configured timeout, cut to 90 % of the scrape
        deadline so that a hung target is reported down (``up 0``) before the runner gives up
        on the collector."""
        return min(configured, 0.9 * deadline)

    def up_metric(self, value: int) -> Metric:
        fam = GaugeMetricFamily(
            f"{self.name}_up",
            f"Whether the last scrape of the {self.name} target succeeded (1) or not (0).",
            labels=["target"],
        )
        fam.add_metric([self.target or ""], value)
        return fam

    def collect(self, timeout: float) -> Iterable[Metric]:
        try:
            metrics = list(self.scrape(timeout))
        except TargetUnavailable as exc:
            log.warning(
                "target unavailable",
                extra={"kv": {"collector": self.name, "target": self.target, "err": str(exc)}},
            )
            return [self.up_metric(0)]
        return [self.up_metric(1), *metrics]

    def failure_metrics(self) -> list[Metric]:
        return [self.up_metric(0)]


@dataclass
class Outcome:
    """One collection of one collector; shared by every scrape that waits for it."""

    collector: Collector
    started: float = 0.0
    ends: float = 0.0  # the deadline of the scrape that started it
    success: bool = False
    duration: float = 0.0
    metrics: list[Metric] = field(default_factory=list)
    done: threading.Event = field(default_factory=threading.Event)


def _labels(collector: Collector) -> dict[str, str]:
    labels = {"collector": collector.name}
    if collector.target is not None:
        labels["target"] = collector.target
    return labels


class ScrapeRunner:
    """Runs collectors concurrently under a deadline and merges what they return.

    A collector runs at most once at a time. A scrape that finds its collection still running
    joins it: it waits for that collection (up to its own deadline) and reports its result,
    as the scrape that started it does. A collection already past the deadline of the scrape
    that started it has hung: it is reported failed at once, so a stuck target never piles up
    threads nor holds up every later scrape.
    """

    def __init__(
        self,
        collectors: Sequence[Collector],
        deadline: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.collectors = list(collectors)
        self.deadline = deadline
        self._clock = clock
        self._lock = threading.Lock()
        self._running: dict[int, Outcome] = {}  # id(collector) -> its collection in flight

    def _run(self, outcome: Outcome, timeout: float) -> None:
        collector = outcome.collector
        start = outcome.started
        try:
            outcome.metrics = list(collector.collect(timeout))
            outcome.success = True
        except Exception as exc:  # one broken collector must not fail the scrape
            log.error(
                "collector failed",
                extra={"kv": {**_labels(collector), "err": f"{type(exc).__name__}: {exc}"}},
            )
        finally:
            outcome.duration = self._clock() - start
            with self._lock:
                if self._running.get(id(collector)) is outcome:
                    del self._running[id(collector)]
            outcome.done.set()

    def effective_deadline(self, scrape_timeout: float | None) -> float:
        """The configured deadline, lowered to leave a margin inside Prometheus' own timeout."""
        if scrape_timeout is None or scrape_timeout <= 0:
            return self.deadline
        return max(0.1, min(self.deadline, scrape_timeout - 0.5))

    def scrape(self, scrape_timeout: float | None = None) -> list[Metric]:
        budget = self.effective_deadline(scrape_timeout)
        start = self._clock()
        outcomes: list[Outcome] = []
        for collector in self.collectors:
            with self._lock:
                running = self._running.get(id(collector))
                if running is None:
                    outcome = Outcome(collector, started=start, ends=start + budget)
                    self._running[id(collector)] = outcome
            if running is not None:
                if running.ends <= start:
                    log.error(
                        "collector still running from an earlier scrape",
                        extra={"kv": _labels(collector)},
                    )
                    running = Outcome(collector, started=start)
                    running.done.set()
                outcomes.append(running)  # an overlapping scrape's collection: share it
                continue
            outcomes.append(outcome)
            threading.Thread(
                target=self._run,
                args=(outcome, budget),
                name=f"collect-{collector.name}",
                daemon=True,
            ).start()

        for outcome in outcomes:
            remaining = budget - (self._clock() - start)
            if not outcome.done.wait(max(0.0, remaining)):
                log.error(
                    "collector overran the deadline",
                    extra={"kv": {**_labels(outcome.collector), "deadline": f"{budget:.3f}"}},
                )
        return self._merge(outcomes)

    def _merge(self, outcomes: list[Outcome]) -> list[Metric]:
        families: dict[str, Metric] = {}

        def add(metric: Metric) -> None:
            # a copy: the collector's own families may be shared with an overlapping scrape
            have = families.get(metric.name)
            if have is None:
                have = families[metric.name] = copy.copy(metric)
                have.samples = []
            have.samples.extend(metric.samples)

        success = GaugeMetricFamily(
            "sscp_exporter_collector_success",
            "Whether a collector succeeded (1) in this scrape, or raised or overran (0).",
        )
        duration = GaugeMetricFamily(
            "sscp_exporter_collector_duration_seconds",
            "How long a collector took in this scrape.",
        )
        for outcome in outcomes:
            labels = _labels(outcome.collector)
            finished = outcome.done.is_set()
            ok = finished and outcome.success
            metrics = outcome.metrics if ok else outcome.collector.failure_metrics()
            for metric in metrics:
                add(metric)
            took = outcome.duration if finished else self._clock() - outcome.started
            success.add_sample(success.name, labels, 1.0 if ok else 0.0)
            duration.add_sample(duration.name, labels, round(took, 6))
        build = GaugeMetricFamily(
            "sscp_exporter_build_info",
            "A metric with a constant 1 labelled by the version of sscp-ops and Python.",
            labels=["version", "pythonversion"],
        )
        build.add_metric([__version__, platform.python_version()], 1)
        return [*families.values(), success, duration, build]

    def start(self) -> None:
        for collector in self.collectors:
            collector.start()

    def close(self) -> None:
        for collector in self.collectors:
            try:
                collector.close()
            except Exception:  # best effort at shutdown
                log.exception("closing collector failed", extra={"kv": _labels(collector)})
