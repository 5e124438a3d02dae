"""The ``exporter:`` section: where it listens, its scrape deadline, which collectors run."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import Field

from sscp_ops.config.base import Model, PositiveSeconds


class ExporterConfig(Model):
    """How ``sscp-ops exporter`` serves: address, scrape deadline, enabled collectors."""

    listen_address: Annotated[str, Field(pattern=r"^(\[[0-9a-fA-F:]+\]|[^:\s]*):\d{1,5}$")] = (
        "127.0.0.1:9810"
    )
    #: Upper bound of one scrape; Prometheus' X-Prometheus-Scrape-Timeout-Seconds lowers it.
    deadline: PositiveSeconds = 5.0
    #: Collector name -> enabled. Unlisted collectors keep their own default.
    collectors: dict[str, bool] = {}
    #: ``*.prom`` files the textfile collector exposes (node_exporter's
    #: ``--collector.textfile.directory``; ``sscp-ops review accounts --metrics-file`` writes here).
    textfile_directory: Path = Path("/var/lib/prometheus/node-exporter")
