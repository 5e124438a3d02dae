"""Tomcat collector: the manager's XML status page (``/manager/status?XML=true``, HTTP basic
auth, role ``manager-status``) of each configured target.

There is no reference exporter for this page, so the names are ours, under ``tomcat_``; every
series carries ``target``, connector series also ``connector`` (Tomcat's connector name, e.g.
``http-nio-8080``) and memory pool series ``pool``:

    tomcat_up{target="app1"} 1
    tomcat_threads_max{connector="http-nio-8080",target="app1"} 200
    tomcat_threads_current{connector="http-nio-8080",target="app1"} 10
    tomcat_threads_busy{connector="http-nio-8080",target="app1"} 1
    tomcat_requests_total{connector="http-nio-8080",target="app1"} 1520
    tomcat_request_errors_total{connector="http-nio-8080",target="app1"} 3
    tomcat_request_processing_seconds_total{connector="http-nio-8080",target="app1"} 12.5
    tomcat_request_max_processing_seconds{connector="http-nio-8080",target="app1"} 0.057
    tomcat_received_bytes_total{connector="http-nio-8080",target="app1"} 10240
    tomcat_sent_bytes_total{connector="http-nio-8080",target="app1"} 2.2e+06
    tomcat_jvm_memory_free_bytes{target="app1"} 4.5e+07
    tomcat_jvm_memory_total_bytes{target="app1"} 6.9e+07
    tomcat_jvm_memory_max_bytes{target="app1"} 2.68e+08
    tomcat_jvm_memory_pool_used_bytes{pool="G1 Old Gen",target="app1"} 8.1e+06
    tomcat_jvm_memory_pool_committed_bytes{pool="G1 Old Gen",target="app1"} 2.7e+07
    tomcat_jvm_memory_pool_max_bytes{pool="G1 Old Gen",target="app1"} 2.68e+08

The version (``tomcat_version_info{target="app1",version="10.1.60"} 1``) is on the manager's
HTML status page (the same URL without ``?XML=true``, same role), read once an hour.

Thread-pool saturation, the figure to tune ``maxThreads`` by, is
``tomcat_threads_busy / tomcat_threads_max``. ``processingTime`` and ``maxTime`` come in
milliseconds and are exposed in seconds; a pool's ``max`` of -1 (unbounded) is left out.
"""

from __future__ import annotations

import re
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from exporters.core import (
    Collector,
    ParseError,
    TargetCollector,
    TargetUnavailable,
    read_password,
)
from exporters.http import fetch_text, make_session
from sscp_ops.config import Config
from sscp_ops.config.targets import TomcatTarget


@dataclass(frozen=True)
class Connector:
    name: str
    max_threads: int
    current_threads: int
    busy_threads: int
    requests: int
    errors: int
    processing_seconds: float
    max_seconds: float
    bytes_received: int
    bytes_sent: int


@dataclass(frozen=True)
class MemoryPool:
    name: str
    kind: str
    used: int
    committed: int
    max: int | None


@dataclass(frozen=True)
class TomcatStatus:
    memory_free: int
    memory_total: int
    memory_max: int
    pools: tuple[MemoryPool, ...]
    connectors: tuple[Connector, ...]


def _int(element: ET.Element, attr: str) -> int:
    raw = element.get(attr)
    if raw is None:
        raise ParseError(f"tomcat status: <{element.tag}> has no {attr!r}")
    try:
        return int(raw)
    except ValueError:
        raise ParseError(f"tomcat status: <{element.tag} {attr}={raw!r}> is not a number") from None


def _child(element: ET.Element, tag: str) -> ET.Element:
    found = element.find(tag)
    if found is None:
        raise ParseError(f"tomcat status: <{element.tag}> has no <{tag}>")
    return found


def parse_tomcat_status(xml: str | bytes) -> TomcatStatus:
    """The manager's ``status?XML=true`` document -> :class:`TomcatStatus`."""
    try:
        root = ET.fromstring(xml)
    except ET.ParseError as exc:
        raise ParseError(f"tomcat status: not XML: {exc}") from None
    if root.tag != "status":
        raise ParseError(f"tomcat status: root element is <{root.tag}>, expected <status>")
    memory = _child(_child(root, "jvm"), "memory")
    pools = tuple(
        MemoryPool(
            name=pool.get("name", ""),
            kind=pool.get("type", ""),
            used=_int(pool, "usageUsed"),
            committed=_int(pool, "usageCommitted"),
            max=None if _int(pool, "usageMax") < 0 else _int(pool, "usageMax"),
        )
        for pool in root.iterfind("jvm/memorypool")
    )
    connectors = []
    for conn in root.iterfind("connector"):
        threads = _child(conn, "threadInfo")
        req = _child(conn, "requestInfo")
        connectors.append(
            Connector(
                name=conn.get("name", "").strip('"'),
                max_threads=_int(threads, "maxThreads"),
                current_threads=_int(threads, "currentThreadCount"),
                busy_threads=_int(threads, "currentThreadsBusy"),
                requests=_int(req, "requestCount"),
                errors=_int(req, "errorCount"),
                processing_seconds=_int(req, "processingTime") / 1000.0,
                max_seconds=_int(req, "maxTime") / 1000.0,
                bytes_received=_int(req, "bytesReceived"),
                bytes_sent=_int(req, "bytesSent"),
            )
        )
    if not connectors:
        raise ParseError("tomcat status: no <connector>")
    return TomcatStatus(
        memory_free=_int(memory, "free"),
        memory_total=_int(memory, "total"),
        memory_max=_int(memory, "max"),
        pools=pools,
        connectors=tuple(connectors),
    )


# (attribute of Connector, metric name, help, counter?)
_CONNECTOR_METRICS = (
    ("max_threads", "tomcat_threads_max", "maxThreads of the connector's thread pool.", False),
    ("current_threads", "tomcat_threads_current", "Threads in the connector's pool.", False),
    ("busy_threads", "tomcat_threads_busy", "Threads of the pool serving a request.", False),
    ("requests", "tomcat_requests_total", "Requests processed by the connector.", True),
    ("errors", "tomcat_request_errors_total", "Requests that ended in an error.", True),
    (
        "processing_seconds",
        "tomcat_request_processing_seconds_total",
        "Time spent processing requests.",
        True,
    ),
    (
        "max_seconds",
        "tomcat_request_max_processing_seconds",
        "Longest time spent processing one request.",
        False,
    ),
    ("bytes_received", "tomcat_received_bytes_total", "Bytes received by the connector.", True),
    ("bytes_sent", "tomcat_sent_bytes_total", "Bytes sent by the connector.", True),
)


def status_metrics(target: str, status: TomcatStatus) -> list[Metric]:
    """Map a parsed status page to metric families, every series labelled ``target``."""
    out: list[Metric] = []
    for attr, name, doc, counter in _CONNECTOR_METRICS:
        kind = CounterMetricFamily if counter else GaugeMetricFamily
        fam = kind(name, doc, labels=["target", "connector"])
        for conn in status.connectors:
            fam.add_metric([target, conn.name], getattr(conn, attr))
        out.append(fam)
    for field, doc in (
        ("free", "Free memory of the JVM heap."),
        ("total", "Memory the JVM has reserved for its heap."),
        ("max", "The most heap memory the JVM will use."),
    ):
        fam = GaugeMetricFamily(f"tomcat_jvm_memory_{field}_bytes", doc, labels=["target"])
        fam.add_metric([target], getattr(status, f"memory_{field}"))
        out.append(fam)
    used = GaugeMetricFamily(
        "tomcat_jvm_memory_pool_used_bytes",
        "Used bytes of a JVM memory pool.",
        labels=["target", "pool"],
    )
    committed = GaugeMetricFamily(
        "tomcat_jvm_memory_pool_committed_bytes",
        "Committed bytes of a JVM memory pool.",
        labels=["target", "pool"],
    )
    most = GaugeMetricFamily(
        "tomcat_jvm_memory_pool_max_bytes",
        "Maximum bytes of a JVM memory pool (absent when unbounded).",
        labels=["target", "pool"],
    )
    for pool in status.pools:
        used.add_metric([target, pool.name], pool.used)
        committed.add_metric([target, pool.name], pool.committed)
        if pool.max is not None:
            most.add_metric([target, pool.name], pool.max)
    return [*out, used, committed, most]


_VERSION = re.compile(r"Apache Tomcat/(\d[\w.\-]*)")


def parse_tomcat_version(html: str) -> str:
    """The manager's HTML status page -> the Tomcat version (``10.1.60``)."""
    m = _VERSION.search(html)
    if m is None:
        raise ParseError("tomcat status page: no 'Apache Tomcat/<version>'")
    return m.group(1)


class TomcatCollector(TargetCollector):
    name = "tomcat"
    #: Seconds a version read from the HTML status page is reused (it changes on restart only).
    version_ttl = 3600.0

    def __init__(self, target: TomcatTarget, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(target.name)
        self.config = target
        self._session = make_session(target.tls)
        self._clock = clock
        self._version: tuple[float, str] | None = None  # read at, version

    def scrape(self, timeout: float) -> Iterable[Metric]:
        password = read_password(self.config)
        self._session.auth = (
            (self.config.user, password or "") if self.config.user is not None else None
        )
        io_timeout = self.io_timeout(timeout, self.config.timeout)
        text = fetch_text(self._session, self.config.url, io_timeout)
        metrics = list(status_metrics(self.target or "", parse_tomcat_status(text)))
        version = self._read_version(io_timeout)
        if version is not None:
            info = GaugeMetricFamily(
                "tomcat_version_info", "Tomcat version.", labels=["target", "version"]
            )
            info.add_metric([self.target or "", version], 1)
            metrics.append(info)
        return metrics

    def _read_version(self, timeout: float) -> str | None:
        now = self._clock()
        if self._version is not None and now - self._version[0] < self.version_ttl:
            return self._version[1]
        parts = urlsplit(str(self.config.url))
        html_url = urlunsplit(parts._replace(query=""))
        try:
            version = parse_tomcat_version(fetch_text(self._session, html_url, timeout))
        except (TargetUnavailable, ParseError):  # keep the status figures, version or not
            return self._version[1] if self._version else None
        self._version = (now, version)
        return version

    def close(self) -> None:
        self._session.close()


def build(config: Config) -> list[Collector]:
    return [TomcatCollector(target) for target in config.targets.tomcat]
