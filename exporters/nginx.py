"""Nginx collector: the ``stub_status`` page of each configured target, under the names of
nginx-prometheus-exporter (0.11), so its dashboards work unchanged. Sample output::

    nginx_up{target="web1"} 1
    nginx_connections_active{target="web1"} 3
    nginx_connections_reading{target="web1"} 0
    nginx_connections_writing{target="web1"} 1
    nginx_connections_waiting{target="web1"} 2
    nginx_connections_accepted{target="web1"} 1045
    nginx_connections_handled{target="web1"} 1045
    nginx_http_requests_total{target="web1"} 5210
    nginx_version_info{target="web1",version="1.22.1"} 1

``nginx_version_info`` comes from the ``Server`` header of the stub_status answer; it is left
out when ``server_tokens off`` hides the version.

``nginx_connections_accepted`` and ``_handled`` are counters in nginx-prometheus-exporter, but
their names lack the ``_total`` suffix a counter must have; they are exposed as *untyped*
(``rate()`` works the same) so the output stays valid OpenMetrics and passes
``promtool check metrics``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    Metric,
    UnknownMetricFamily,
)

from exporters.core import Collector, ParseError, TargetCollector
from exporters.http import fetch, make_session
from sscp_ops.config import Config
from sscp_ops.config.targets import NginxTarget


@dataclass(frozen=True)
class StubStatus:
    active: int
    accepted: int
    handled: int
    requests: int
    reading: int
    writing: int
    waiting: int


_STUB_STATUS = re.compile(
    r"\AActive connections:\s*(\d+)\s*\n"
    r"server accepts handled requests\s*\n"
    r"\s*(\d+)\s+(\d+)\s+(\d+)\s*\n"
    r"Reading:\s*(\d+)\s+Writing:\s*(\d+)\s+Waiting:\s*(\d+)\s*\Z"
)


def parse_stub_status(text: str) -> StubStatus:
    """The four lines of ``ngx_http_stub_status_module`` -> :class:`StubStatus`."""
    match = _STUB_STATUS.match(text.replace("\r\n", "\n"))
    if match is None:
        head = text[:60].replace("\n", "\\n")
        raise ParseError(f"stub_status: unexpected content starting with {head!r}")
    active, accepted, handled, requests, reading, writing, waiting = map(int, match.groups())
    return StubStatus(active, accepted, handled, requests, reading, writing, waiting)


_SERVER = re.compile(r"^nginx/(\d[\w.\-]*)")


def parse_server_version(server: str) -> str | None:
    """``nginx/1.22.1`` (the ``Server`` header) -> ``1.22.1``; None when no version is given."""
    m = _SERVER.match(server.strip())
    return m.group(1) if m else None


def version_info(target: str, version: str | None) -> list[Metric]:
    if version is None:
        return []
    fam = GaugeMetricFamily(
        "nginx_version_info", "Nginx version from the Server header.", labels=["target", "version"]
    )
    fam.add_metric([target, version], 1)
    return [fam]


class NginxCollector(TargetCollector):
    name = "nginx"

    def __init__(self, target: NginxTarget) -> None:
        super().__init__(target.name)
        self.config = target
        self._session = make_session(target.tls)

    def scrape(self, timeout: float) -> Iterable[Metric]:
        response = fetch(
            self._session, self.config.url, self.io_timeout(timeout, self.config.timeout)
        )
        status = parse_stub_status(response.text)
        t = [self.target]
        version = parse_server_version(response.headers.get("Server", ""))

        def gauge(name: str, doc: str, value: int) -> Metric:
            fam = GaugeMetricFamily(name, doc, labels=["target"])
            fam.add_metric(t, value)
            return fam

        def untyped(name: str, doc: str, value: int) -> Metric:
            fam = UnknownMetricFamily(name, doc, labels=["target"])
            fam.add_metric(t, value)
            return fam

        requests = CounterMetricFamily(
            "nginx_http_requests_total", "Total http requests", labels=["target"]
        )
        requests.add_metric(t, status.requests)
        return [
            untyped("nginx_connections_accepted", "Accepted client connections", status.accepted),
            gauge("nginx_connections_active", "Active client connections", status.active),
            untyped("nginx_connections_handled", "Handled client connections", status.handled),
            gauge(
                "nginx_connections_reading",
                "Connections where NGINX is reading the request header",
                status.reading,
            ),
            gauge("nginx_connections_waiting", "Idle client connections", status.waiting),
            gauge(
                "nginx_connections_writing",
                "Connections where NGINX is writing the response back to the client",
                status.writing,
            ),
            requests,
            *version_info(self.target or "", version),
        ]

    def close(self) -> None:
        self._session.close()


def build(config: Config) -> list[Collector]:
    return [NginxCollector(target) for target in config.targets.nginx]
