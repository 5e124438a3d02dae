"""Textfile collector: the ``*.prom`` files of one directory, as node_exporter's
``--collector.textfile.directory`` reads them, for metrics written by jobs that run now and
then (``sscp-ops review accounts --metrics-file``). The shipped Prometheus config scrapes only
the sscp-ops exporter, so without this collector those files are never read.

Files are read at scrape time; names not ending in ``.prom`` (the writers' temporary files)
are skipped. A file that cannot be read or parsed is left out whole and sets
``node_textfile_scrape_error`` to 1 (node_exporter's name); a missing directory is no error
(nothing has been written yet). Sample output::

    sscp_account_review_findings{kind="os_sudo"} 4
    sscp_account_review_last_run_timestamp_seconds 1.7959e+09
    node_textfile_mtime_seconds{file="account_review.prom"} 1.7959e+09
    node_textfile_scrape_error 0
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.parser import text_string_to_metric_families

from exporters.core import Collector
from sscp_ops.config import Config

log = logging.getLogger("exporter")


def parse_textfile(text: str) -> list[Metric]:
    """Prometheus text format -> metric families; raises ValueError on a malformed file."""
    return list(text_string_to_metric_families(text))


class TextfileCollector(Collector):
    name = "textfile"

    def __init__(self, directory: Path) -> None:
        self._dir = directory

    def collect(self, timeout: float) -> Iterable[Metric]:
        error = 0
        mtimes = GaugeMetricFamily(
            "node_textfile_mtime_seconds",
            "Unixtime mtime of textfiles successfully read.",
            labels=["file"],
        )
        families: list[Metric] = []
        try:
            paths = sorted(p for p in self._dir.iterdir() if p.name.endswith(".prom"))
        except FileNotFoundError:
            paths = []
        except OSError as exc:
            log.warning("textfile directory", extra={"kv": {"err": exc.strerror}})
            paths, error = [], 1
        for path in paths:
            try:
                text = path.read_text(encoding="utf-8")
                mtime = path.stat().st_mtime
                found = parse_textfile(text)
            except (OSError, ValueError, UnicodeDecodeError) as exc:
                log.warning("textfile", extra={"kv": {"file": path.name, "err": str(exc)}})
                error = 1
                continue
            families.extend(found)
            mtimes.add_metric([path.name], mtime)
        yield from families
        if mtimes.samples:
            yield mtimes
        yield GaugeMetricFamily(
            "node_textfile_scrape_error",
            "1 if there was an error opening or reading a file, 0 otherwise",
            value=error,
        )


def build(config: Config) -> list[Collector]:
    return [TextfileCollector(config.exporter.textfile_directory)]
