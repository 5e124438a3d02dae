"""Journey collector: the last result of each scripted user journey (``journeys:``).

The one exception to "collect at scrape time": a journey logs in, submits a form and deletes
what it created, so it must not run on every scrape (two Prometheus servers would double the
test data and the load) nor make a scrape wait for it. A :class:`JourneyScheduler` thread per
journey, started by ``sscp-ops exporter``, runs it every ``interval`` seconds; ``collect``
only reads the last results::

    sla_journey_success{journey="inspection-form"} 0
    sla_journey_duration_seconds{journey="inspection-form"} 2.41
    sla_journey_last_run_timestamp_seconds{journey="inspection-form"} 1.77e+09
    sla_journey_step_success{journey="inspection-form",step="企业查询"} 0
    sla_journey_step_duration_seconds{journey="inspection-form",step="企业查询"} 2.31
    sla_journey_failed_step_info{journey="inspection-form",step="企业查询"} 1

A skipped step (after a failure) reports success 0 and duration 0. A journey that has not
finished its first run exports nothing yet. With ``availability: true`` the result is also
exported as ``sla_probe_success{target=<journey>}``, ``sla_probe_duration_seconds`` and
``sla_probe_platform 1``, so it counts in the platform's availability like a probe target.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence

from prometheus_client.core import GaugeMetricFamily, Metric

from exporters.core import Collector
from sscp_ops.config import Config
from sscp_ops.config.journeys import Journey
from sscp_ops.journeys.runner import JourneyResult, run_journey

log = logging.getLogger("exporter")


class JourneyScheduler:
    """Runs each journey on its own schedule in its own thread; keeps the last result."""

    def __init__(
        self,
        journeys: Sequence[Journey],
        run: Callable[[Journey], JourneyResult] = run_journey,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.journeys = list(journeys)
        self._run = run
        self._clock = clock
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._results: dict[str, JourneyResult] = {}
        self._lock = threading.Lock()

    def start(self) -> None:
        for journey in self.journeys:
            thread = threading.Thread(
                target=self._loop, args=(journey,), name=f"journey-{journey.name}", daemon=True
            )
            thread.start()
            self._threads.append(thread)

    def _loop(self, journey: Journey) -> None:
        while not self._stop.is_set():
            began = self._clock()
            try:
                result = self._run(journey)
            except Exception:  # a bug must not end the schedule
                log.exception("journey run crashed", extra={"kv": {"journey": journey.name}})
            else:
                with self._lock:
                    self._results[journey.name] = result
            # the next run starts interval seconds after this one started (never overlaps)
            self._stop.wait(max(0.0, journey.interval - (self._clock() - began)))

    def results(self) -> list[JourneyResult]:
        """The last finished run of each journey, in config order."""
        with self._lock:
            return [self._results[j.name] for j in self.journeys if j.name in self._results]

    def stop(self, timeout: float = 2.0) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout)  # a run in flight ends at its request timeout (daemon thread)


class JourneyCollector(Collector):
    name = "journeys"

    def __init__(self, scheduler: JourneyScheduler) -> None:
        self.scheduler = scheduler
        self._availability = {j.name for j in scheduler.journeys if j.availability}

    def start(self) -> None:
        self.scheduler.start()

    def collect(self, timeout: float) -> Iterable[Metric]:
        return journey_metrics(self.scheduler.results(), self._availability)

    def close(self) -> None:
        self.scheduler.stop()


def journey_metrics(results: Sequence[JourneyResult], availability: set[str]) -> list[Metric]:
    def family(name: str, help_text: str, labels: list[str]) -> GaugeMetricFamily:
        return GaugeMetricFamily(name, help_text, labels=labels)

    success = family(
        "sla_journey_success",
        "Whether every step of the last run passed (1) or not (0).",
        ["journey"],
    )
    duration = family(
        "sla_journey_duration_seconds", "How long the last run took, all steps.", ["journey"]
    )
    last = family(
        "sla_journey_last_run_timestamp_seconds",
        "When the last run started, in Unix time.",
        ["journey"],
    )
    step_success = family(
        "sla_journey_step_success",
        "Whether the step passed in the last run (0 when it failed or was skipped).",
        ["journey", "step"],
    )
    step_duration = family(
        "sla_journey_step_duration_seconds",
        "How long the step's request took in the last run (0 when skipped).",
        ["journey", "step"],
    )
    failed = family(
        "sla_journey_failed_step_info",
        "The first step that failed in the last run (absent when the run passed).",
        ["journey", "step"],
    )
    probe_success = family(
        "sla_probe_success",
        "Whether the probe got the expected status and keyword (1) or not (0).",
        ["target"],
    )
    probe_duration = family(
        "sla_probe_duration_seconds",
        "How long the probe took: connect, TLS, request and reading the body.",
        ["target"],
    )
    probe_platform = family(
        "sla_probe_platform",
        "Whether this probe is part of the platform's availability (1) or not (0).",
        ["target"],
    )
    for result in results:
        name = result.journey
        success.add_metric([name], 1 if result.success else 0)
        duration.add_metric([name], round(result.seconds, 6))
        last.add_metric([name], result.started)
        for step in result.steps:
            step_success.add_metric([name, step.name], 1 if step.status == "passed" else 0)
            step_duration.add_metric([name, step.name], round(step.seconds, 6))
        bad = result.failed_step
        if bad is not None:
            failed.add_metric([name, bad.name], 1)
        if name in availability:
            probe_success.add_metric([name], 1 if result.success else 0)
            probe_duration.add_metric([name], round(result.seconds, 6))
            probe_platform.add_metric([name], 1)
    out = [success, duration, last, step_success, step_duration, failed]
    if availability:
        out += [probe_success, probe_duration, probe_platform]
    return out


def build(config: Config) -> list[Collector]:
    return [JourneyCollector(JourneyScheduler(config.journeys))]
