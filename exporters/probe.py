"""SLA probe collector: synthetic HTTP(S) checks of the platform's key URLs.

Each configured probe (``targets.probe``) is requested at scrape time, as the blackbox
exporter's ``http`` prober does, and the result is the availability indicator's raw data::

    sla_probe_success{target="home"} 1
    sla_probe_duration_seconds{target="home"} 0.0213
    sla_probe_http_status_code{target="home"} 200
    sla_probe_tls_cert_expiry_timestamp_seconds{target="home"} 1.8276e+09
    sla_probe_platform{target="home"} 1
    sla_probe_up{target="home"} 1

A platform that is down, slow, answers the wrong status or lacks the keyword is a *finding*,
not a failure of the exporter: the probe then reports ``sla_probe_success 0`` (status code 0
when no HTTP answer came) and ``sla_probe_up`` stays 1. ``sla_probe_up`` is 0 only when the
probe itself could not run (a bug, or the scrape deadline passed first).
"""

from __future__ import annotations

import codecs
import logging
import re
import time
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import requests
from cryptography import x509
from prometheus_client.core import GaugeMetricFamily, Metric
from urllib3.exceptions import InsecureRequestWarning

from exporters.core import Collector, TargetCollector
from sscp_ops.config import Config
from sscp_ops.config.targets import ProbeTarget

log = logging.getLogger("exporter")

#: The body is read up to this size for the keyword check; the rest is not downloaded.
MAX_BODY_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True)
class ProbeResult:
    success: bool
    duration: float
    status_code: int
    cert_expiry: float | None = None
    #: Why the probe failed, for the log (never shown in a label).
    reason: str = ""


#: A browser looks for ``<meta charset>`` in the first 1024 bytes only (the HTML prescan).
META_PRESCAN_BYTES = 1024
_META_CHARSET = re.compile(rb"""<meta[^>]*?charset\s*=\s*["']?\s*([A-Za-z0-9._:-]+)""", re.I)
_HEADER_CHARSET = re.compile(r"""charset\s*=\s*["']?\s*([A-Za-z0-9._:-]+)""", re.I)
_BOMS = (
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


def _codec(label: str | bytes | None) -> str | None:
    """The Python codec of a charset label, or None when the label is unknown."""
    if not label:
        return None
    if isinstance(label, bytes):
        label = label.decode("ascii", errors="replace")
    try:
        return codecs.lookup(label.strip()).name
    except LookupError:
        return None


def page_charset(content_type: str | None, body: bytes | bytearray) -> str:
    """The charset a browser decodes the page with: a byte-order mark, else the charset of the
    Content-Type header, else ``<meta charset>`` (or ``http-equiv``) in the first 1024 bytes,
    else UTF-8 (never requests' ISO-8859-1 guess for a bare ``text/html``: nginx's default
    ``charset off`` sends UTF-8 Chinese pages that way). Unknown labels are skipped."""
    for bom, name in _BOMS:
        if body.startswith(bom):
            return name
    header = _HEADER_CHARSET.search(content_type or "")
    found = _codec(header.group(1)) if header else None
    if found is None:
        meta = _META_CHARSET.search(bytes(body[:META_PRESCAN_BYTES]))
        found = _codec(meta.group(1)) if meta else None
    return found or "utf-8"


def body_has_keyword(body: bytes | bytearray, encoding: str | None, keyword: str) -> bool:
    """Whether ``keyword`` occurs in the body decoded with ``encoding`` (else UTF-8)."""
    try:
        text = body.decode(encoding or "utf-8", errors="replace")
    except LookupError:  # an unknown charset name
        text = body.decode("utf-8", errors="replace")
    return keyword in text


def cert_expiry(der: bytes) -> float:
    """The ``notAfter`` of a DER certificate as a Unix timestamp."""
    return x509.load_der_x509_certificate(der).not_valid_after_utc.timestamp()


def _peer_cert(response: requests.Response) -> bytes | None:
    conn = getattr(response.raw, "connection", None)
    sock = getattr(conn, "sock", None)
    getpeercert = getattr(sock, "getpeercert", None)
    if getpeercert is None:
        return None
    return getpeercert(binary_form=True)


def _expiry_or_none(der: bytes | None) -> float | None:
    if not der:
        return None
    try:
        return cert_expiry(der)
    except ValueError:  # a certificate cryptography cannot read: no expiry, probe still counts
        log.warning("unreadable server certificate", extra={"kv": {"bytes": len(der)}})
        return None


class ProbeCollector(TargetCollector):
    """One probe: request the URL, check status and keyword, time it, read the TLS certificate."""

    name = "sla_probe"

    def __init__(
        self,
        probe: ProbeTarget,
        session: requests.Session | None = None,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        super().__init__(probe.name)
        self.probe = probe
        self._clock = clock
        self._session = session or requests.Session()
        self._session.headers["User-Agent"] = "sscp-ops-probe"
        # Probe the platform directly: no proxy or CA bundle from the environment, no .netrc
        # (and no per-request scan of os.environ, a third of a local probe's time).
        self._session.trust_env = False
        tls = probe.tls
        if tls is not None and tls.insecure_skip_verify:
            self._verify: bool | str = False
            # The operator chose this for the probe; one warning per request is noise.
            warnings.filterwarnings("ignore", category=InsecureRequestWarning)
        elif tls is not None and tls.ca_file is not None:
            self._verify = str(tls.ca_file)
        else:
            self._verify = True
        if tls is not None and tls.cert_file is not None:
            self._session.cert = (
                (str(tls.cert_file), str(tls.key_file)) if tls.key_file else str(tls.cert_file)
            )

    def run(self, timeout: float) -> ProbeResult:
        """Carry out the probe, spending at most about ``timeout`` seconds."""
        probe = self.probe
        start = self._clock()
        status, expiry = 0, None
        try:
            with self._session.request(
                probe.method,
                probe.url,
                timeout=timeout,
                verify=self._verify,
                stream=True,
                allow_redirects=True,
            ) as resp:
                status = resp.status_code
                if probe.url.startswith("https://"):
                    expiry = _expiry_or_none(_peer_cert(resp))
                body = bytearray()
                for chunk in resp.iter_content(65536):  # read the page, as a browser would
                    body += chunk
                    if len(body) >= MAX_BODY_BYTES:
                        break
                content_type = resp.headers.get("Content-Type")
        except requests.RequestException as exc:
            reason = f"{type(exc).__name__}: {exc}"
            return ProbeResult(False, self._clock() - start, status, expiry, reason)
        duration = self._clock() - start
        if status != probe.expect_status:
            return ProbeResult(False, duration, status, expiry, f"status {status}")
        encoding = page_charset(content_type, body)
        if probe.keyword and not body_has_keyword(body, encoding, probe.keyword):
            return ProbeResult(False, duration, status, expiry, "keyword not found")
        return ProbeResult(True, duration, status, expiry)

    def scrape(self, timeout: float) -> Iterable[Metric]:
        # Leave a margin inside the scrape deadline so a hanging site is reported as a failed
        # probe (a finding) rather than an overrun collector.
        result = self.run(max(0.1, min(self.probe.timeout, timeout - 0.2)))
        if not result.success:
            log.info(
                "probe failed",
                extra={"kv": {"target": self.target, "reason": result.reason}},
            )
        return self._metrics(result)

    def _metrics(self, result: ProbeResult) -> list[Metric]:
        def gauge(name: str, help_text: str, value: float) -> Metric:
            fam = GaugeMetricFamily(name, help_text, labels=["target"])
            fam.add_metric([self.target or ""], value)
            return fam

        out = [
            gauge(
                "sla_probe_success",
                "Whether the probe got the expected status and keyword (1) or not (0).",
                1 if result.success else 0,
            ),
            gauge(
                "sla_probe_duration_seconds",
                "How long the probe took: connect, TLS, request and reading the body.",
                round(result.duration, 6),
            ),
            gauge(
                "sla_probe_http_status_code",
                "HTTP status of the final response (0 when no response came).",
                result.status_code,
            ),
            gauge(
                "sla_probe_platform",
                "Whether this probe is part of the platform's availability (1) or not (0).",
                1 if self.probe.platform else 0,
            ),
        ]
        if result.cert_expiry is not None:
            out.append(
                gauge(
                    "sla_probe_tls_cert_expiry_timestamp_seconds",
                    "When the server's TLS certificate expires (notAfter), in Unix time.",
                    result.cert_expiry,
                )
            )
        return out

    def close(self) -> None:
        self._session.close()


def build(config: Config) -> list[Collector]:
    return [ProbeCollector(probe) for probe in config.targets.probe]
