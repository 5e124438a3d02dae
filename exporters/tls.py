"""TLS collector: how each of the platform's HTTPS endpoints protects personal data in transit.

Per endpoint (``tls_checks.endpoints`` and, with ``include_probes``, every ``https://`` probe
target): whether the certificate chain verifies against the CA store (and the host name
matches), when the server certificate expires, which protocol versions the server accepts
(one handshake per version, TLS 1.0 and 1.1 tried at OpenSSL security level 0 so that a server
still offering them is found), and whether plain HTTP redirects to HTTPS. Sample output::

    sscp_tls_up{target="portal"} 1
    sscp_tls_chain_valid{target="portal"} 1
    sscp_tls_cert_expiry_timestamp_seconds{target="portal"} 1.8276e+09
    sscp_tls_protocol_offered{target="portal",version="TLSv1.0"} 0
    sscp_tls_protocol_offered{target="portal",version="TLSv1.3"} 1
    sscp_tls_http_redirect{target="portal"} 1

``sscp_tls_up`` is 0 when no TLS connection can be made at all (refused, timed out, no common
protocol); the other series are then left out.
"""

from __future__ import annotations

import logging
import socket
import ssl
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import requests
from cryptography import x509
from prometheus_client.core import GaugeMetricFamily, Metric

from exporters.core import Collector, ParseError, TargetCollector, TargetUnavailable
from sscp_ops.config import Config
from sscp_ops.config.tls_checks import TlsEndpoint

log = logging.getLogger("exporter")

PROTOCOLS = (
    ("TLSv1.0", ssl.TLSVersion.TLSv1),
    ("TLSv1.1", ssl.TLSVersion.TLSv1_1),
    ("TLSv1.2", ssl.TLSVersion.TLSv1_2),
    ("TLSv1.3", ssl.TLSVersion.TLSv1_3),
)
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})


def cert_not_after(der: bytes) -> float:
    """The ``notAfter`` of a DER certificate, Unix seconds."""
    try:
        return x509.load_der_x509_certificate(der).not_valid_after_utc.timestamp()
    except ValueError as exc:
        raise ParseError(f"certificate: {exc}") from None


def is_https_redirect(status: int, location: str | None) -> bool:
    """A redirect answer whose ``Location`` is an https:// URL."""
    return (
        status in REDIRECT_STATUSES and bool(location) and location.lower().startswith("https://")
    )


@dataclass(frozen=True)
class Endpoint:
    name: str
    host: str
    port: int
    server_name: str
    http_url: str | None  # None: redirect not checked
    ca_file: Path | None
    timeout: float


def endpoint_from(e: TlsEndpoint) -> Endpoint:
    parts = urlsplit(e.url)
    host = parts.hostname or ""
    http_url = None
    if e.redirect_check:
        http_url = e.http_url or f"http://{parts.netloc.rsplit(':', 1)[0]}/"
    return Endpoint(e.name, host, parts.port or 443, host, http_url, e.ca_file, e.timeout)


class TlsCollector(TargetCollector):
    name = "sscp_tls"

    def __init__(self, endpoint: Endpoint, session: requests.Session | None = None) -> None:
        super().__init__(endpoint.name)
        self.ep = endpoint
        self._session = session or requests.Session()

    def _connect(self, ctx: ssl.SSLContext, timeout: float) -> bytes:
        with (
            socket.create_connection((self.ep.host, self.ep.port), timeout=timeout) as raw,
            ctx.wrap_socket(raw, server_hostname=self.ep.server_name) as tls,
        ):
            return tls.getpeercert(binary_form=True) or b""

    def _unverified(self) -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        return ctx

    def _chain(self, timeout: float) -> tuple[bool, bytes]:
        ca = str(self.ep.ca_file) if self.ep.ca_file else None
        try:
            return True, self._connect(ssl.create_default_context(cafile=ca), timeout)
        except ssl.SSLCertVerificationError as exc:
            log.warning(
                "tls chain does not verify",
                extra={"kv": {"target": self.target, "err": exc.verify_message}},
            )
        except (ssl.SSLError, OSError) as exc:
            raise TargetUnavailable(f"{self.ep.host}:{self.ep.port}: {exc}") from None
        try:
            return False, self._connect(self._unverified(), timeout)
        except (ssl.SSLError, OSError) as exc:
            raise TargetUnavailable(f"{self.ep.host}:{self.ep.port}: {exc}") from None

    def _offers(self, version: ssl.TLSVersion, timeout: float) -> bool:
        ctx = self._unverified()
        ctx.minimum_version = ctx.maximum_version = version
        if version < ssl.TLSVersion.TLSv1_2:
            ctx.set_ciphers("ALL:@SECLEVEL=0")  # let the client try what the server may offer
        try:
            self._connect(ctx, timeout)
            return True
        except ssl.SSLError:
            return False
        except ConnectionResetError:  # some servers reset on an unsupported version
            return False

    def _redirects(self, timeout: float) -> bool:
        assert self.ep.http_url is not None
        try:
            resp = self._session.get(self.ep.http_url, allow_redirects=False, timeout=timeout)
        except requests.RequestException as exc:
            log.warning(
                "plain http not answering",
                extra={"kv": {"target": self.target, "err": type(exc).__name__}},
            )
            return False
        resp.close()
        return is_https_redirect(resp.status_code, resp.headers.get("Location"))

    def scrape(self, timeout: float) -> Iterable[Metric]:
        t = min(self.ep.timeout, timeout)
        valid, der = self._chain(t)
        labels = ["target"]
        chain = GaugeMetricFamily(
            "sscp_tls_chain_valid",
            "Whether the certificate chain verifies and matches the host name (1) or not (0).",
            labels=labels,
        )
        chain.add_metric([self.target], 1 if valid else 0)
        yield chain
        if der:
            expiry = GaugeMetricFamily(
                "sscp_tls_cert_expiry_timestamp_seconds",
                "When the server certificate expires (notAfter).",
                labels=labels,
            )
            expiry.add_metric([self.target], cert_not_after(der))
            yield expiry
        offered = GaugeMetricFamily(
            "sscp_tls_protocol_offered",
            "Whether the server accepts a handshake with this protocol version (1) or not (0).",
            labels=["target", "version"],
        )
        for name, version in PROTOCOLS:
            offered.add_metric([self.target, name], 1 if self._offers(version, t) else 0)
        yield offered
        if self.ep.http_url is not None:
            redirect = GaugeMetricFamily(
                "sscp_tls_http_redirect",
                "Whether plain HTTP answers with a redirect to an https:// URL (1) or not (0).",
                labels=labels,
            )
            redirect.add_metric([self.target], 1 if self._redirects(t) else 0)
            yield redirect

    def close(self) -> None:
        self._session.close()


def endpoints(config: Config) -> list[Endpoint]:
    """The configured endpoints, then the https probe targets not already listed."""
    out = [endpoint_from(e) for e in config.tls_checks.endpoints]
    names = {e.name for e in out}
    if config.tls_checks.include_probes:
        for probe in config.targets.probe:
            if probe.url.startswith("https://") and probe.name not in names:
                ca = probe.tls.ca_file if probe.tls is not None else None
                e = TlsEndpoint(name=probe.name, url=probe.url, ca_file=ca, timeout=probe.timeout)
                out.append(endpoint_from(e))
    return out


def build(config: Config) -> list[Collector]:
    return [TlsCollector(e) for e in endpoints(config)]
