"""Fast encoders for the two exposition formats a scrape can ask for.

prometheus_client's encoders (0.2x) check every character of every name and label value for
UTF-8 name escaping; on the ~1,500 series of one scrape (host + MySQL + Redis + ...) that costs
15-25 ms of CPU, more than collecting them. The metric names made by our collectors are always
legacy-valid (``[a-zA-Z_:][a-zA-Z0-9_:]*``), so the encoders below only escape label values and
help texts, and write the same bytes as prometheus_client's ``generate_latest`` (text 0.0.4)
and ``openmetrics.generate_latest`` for gauges, counters, untyped/unknown, summaries and
histograms without exemplars or native histograms (a test compares them on a full scrape).
Content negotiation stays prometheus_client's own (:func:`choose_encoder`).
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client.core import Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.utils import floatToGoString

_TEXT_TYPES = {
    "unknown": "untyped",
    "info": "gauge",
    "stateset": "gauge",
    "gaugehistogram": "histogram",
}
_OM_EXTRA_SUFFIXES = ("_created", "_gsum", "_gcount")


def _value(v: float) -> str:
    # floatToGoString's fast path: integral values of moderate size print as repr does
    if v.__class__ is float and -1e6 < v < 1e6 and v == v:
        return repr(v)
    return floatToGoString(v)


def _escape_label(value: str) -> str:
    if "\\" in value or "\n" in value or '"' in value:
        return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')
    return value


def _labels(labels: dict[str, str]) -> str:
    if not labels:
        return ""
    if len(labels) == 1:
        ((k, v),) = labels.items()
        return f'{{{k}="{_escape_label(v)}"}}'
    return "{" + ",".join(f'{k}="{_escape_label(v)}"' for k, v in sorted(labels.items())) + "}"


def _line(sample) -> str:
    stamp = "" if sample.timestamp is None else f" {int(float(sample.timestamp) * 1000):d}"
    return f"{sample.name}{_labels(sample.labels)} {_value(sample.value)}{stamp}\n"


def encode_text(metrics: Iterable[Metric]) -> bytes:
    """Prometheus text format 0.0.4, as ``prometheus_client.generate_latest`` writes it."""
    out: list[str] = []
    append = out.append
    for metric in metrics:
        name, kind = metric.name, metric.type
        if kind == "counter":
            name += "_total"
        elif kind == "info":
            name += "_info"
        kind = _TEXT_TYPES.get(kind, kind)
        doc = metric.documentation.replace("\\", r"\\").replace("\n", r"\n")
        append(f"# HELP {name} {doc}\n# TYPE {name} {kind}\n")
        extra: dict[str, list[str]] = {}
        for sample in metric.samples:
            for suffix in _OM_EXTRA_SUFFIXES:
                if sample.name == metric.name + suffix:
                    extra.setdefault(suffix, []).append(_line(sample))
                    break
            else:
                append(_line(sample))
        for suffix, lines in sorted(extra.items()):
            append(f"# HELP {metric.name}{suffix} {doc}\n# TYPE {metric.name}{suffix} gauge\n")
            out.extend(lines)
    return "".join(out).encode("utf-8")


def encode_openmetrics(metrics: Iterable[Metric]) -> bytes:
    """OpenMetrics 1.0 text, as ``prometheus_client.openmetrics.generate_latest`` writes it."""
    out: list[str] = []
    append = out.append
    for metric in metrics:
        doc = _escape_label(metric.documentation)
        append(f"# HELP {metric.name} {doc}\n# TYPE {metric.name} {metric.type}\n")
        if metric.unit:
            append(f"# UNIT {metric.name} {metric.unit}\n")
        for sample in metric.samples:
            stamp = "" if sample.timestamp is None else f" {sample.timestamp}"
            append(f"{sample.name}{_labels(sample.labels)} {_value(sample.value)}{stamp}\n")
    append("# EOF\n")
    return "".join(out).encode("utf-8")


def encode(metrics: list[Metric], accept_header: str) -> tuple[bytes, str]:
    """The body and Content-Type for a scrape whose ``Accept`` header is ``accept_header``."""
    _, content_type = choose_encoder(accept_header)
    if content_type.startswith("application/openmetrics-text"):
        return encode_openmetrics(metrics), content_type
    return encode_text(metrics), content_type
