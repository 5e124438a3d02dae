"""The OS release for the host collector: ``/etc/os-release`` as node_exporter's ``os``
collector exposes it, and the point release the version inventory compares across hosts::

    node_os_info{id="debian",pretty_name="Debian GNU/Linux 12 (bookworm)",version_id="12",...} 1
    node_os_version{id="debian",id_like="",name="Debian GNU/Linux"} 12
    sscp_os_release_info{id="debian",version="12.11"} 1

``sscp_os_release_info`` carries ``/etc/debian_version`` on Debian, else os-release's
``VERSION_ID``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

from prometheus_client.core import GaugeMetricFamily, Metric

#: os-release keys node_exporter's ``os`` collector puts in ``node_os_info`` (lower-cased).
OS_RELEASE_LABELS = (
    "BUILD_ID",
    "ID",
    "ID_LIKE",
    "IMAGE_ID",
    "IMAGE_VERSION",
    "NAME",
    "PRETTY_NAME",
    "VARIANT",
    "VARIANT_ID",
    "VERSION",
    "VERSION_CODENAME",
    "VERSION_ID",
)


def parse_os_release(text: str) -> dict[str, str]:
    """``/etc/os-release`` (shell-style ``KEY=value`` lines, values maybe quoted) -> dict."""
    out = {}
    for line in text.splitlines():
        key, sep, value = line.strip().partition("=")
        if not sep or key.startswith("#"):
            continue
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        out[key] = value.replace('\\"', '"').replace("\\$", "$").replace("\\\\", "\\")
    return out


def os_release_metrics(etc: Path) -> Iterable[Metric]:
    try:
        fields = parse_os_release((etc / "os-release").read_text(encoding="utf-8"))
    except OSError:
        return
    info = GaugeMetricFamily(
        "node_os_info",
        "A metric with a constant '1' value labeled by build_id, id, id_like, image_id, "
        "image_version, name, pretty_name, variant, variant_id, version, version_codename, "
        "version_id.",
        labels=[k.lower() for k in OS_RELEASE_LABELS],
    )
    info.add_metric([fields.get(k, "") for k in OS_RELEASE_LABELS], 1)
    yield info
    number = re.match(r"\d+(?:\.\d+)?", fields.get("VERSION_ID", ""))
    if number:
        version = GaugeMetricFamily(
            "node_os_version",
            "Metric containing the major.minor part of the OS version.",
            labels=["id", "id_like", "name"],
        )
        version.add_metric(
            [fields.get("ID", ""), fields.get("ID_LIKE", ""), fields.get("NAME", "")],
            float(number.group(0)),
        )
        yield version
    try:
        release = (etc / "debian_version").read_text(encoding="utf-8").strip()
    except OSError:
        release = fields.get("VERSION_ID", "")
    rel = GaugeMetricFamily(
        "sscp_os_release_info",
        "The OS release with its point release (Debian: /etc/debian_version).",
        labels=["id", "version"],
    )
    rel.add_metric([fields.get("ID", ""), release], 1)
    yield rel
