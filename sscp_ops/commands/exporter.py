"""``sscp-ops exporter``: serve Prometheus metrics for the configured sources."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading

from sscp_ops import __version__
from sscp_ops.commands import EXIT_FAILURE, EXIT_OK, add_log_level, load
from sscp_ops.config import ConfigError

log = logging.getLogger("exporter")


def add_parser(sub: argparse._SubParsersAction) -> None:
    from exporters.catalog import CATALOG

    p = sub.add_parser("exporter", help="serve Prometheus metrics for the configured sources")
    p.add_argument("--config.file", dest="config_file", metavar="FILE", help="YAML config file")
    p.add_argument(
        "--web.listen-address",
        dest="listen_address",
        metavar="HOST:PORT",
        help="address to listen on (default: exporter.listen_address, 127.0.0.1:9810)",
    )
    add_log_level(p)
    for name, spec in CATALOG.items():
        p.add_argument(
            f"--collector.{name}",
            dest=f"collector_{name}",
            action=argparse.BooleanOptionalAction,
            default=None,
            help=f"{spec.help} (default: {'enabled' if spec.default_enabled else 'disabled'})",
        )
    # BooleanOptionalAction spells the negation --no-collector.NAME, as Prometheus exporters do.
    p.set_defaults(func=_run_exporter)


def _run_exporter(args: argparse.Namespace) -> int:
    from exporters.catalog import CATALOG, build_collectors, enabled_names
    from exporters.core import ScrapeRunner
    from exporters.server import bind, make_app, serve

    config = load(args.config_file)
    for name in config.exporter.collectors:
        if name not in CATALOG:
            source = args.config_file or "<embedded defaults>"
            raise ConfigError(
                f"{source}: exporter.collectors.{name}: unknown collector, "
                f"expected one of: {', '.join(CATALOG)}"
            )
    overrides = {
        name: getattr(args, f"collector_{name}")
        for name in CATALOG
        if getattr(args, f"collector_{name}") is not None
    }
    names = enabled_names(config, overrides)
    address = args.listen_address or config.exporter.listen_address
    runner = ScrapeRunner(build_collectors(config, names), deadline=config.exporter.deadline)
    try:
        server = bind(address, make_app(runner, __version__))
    except (OSError, ValueError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        print(f"sscp-ops exporter: cannot listen on {address}: {reason}", file=sys.stderr)
        return EXIT_FAILURE
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    runner.start()  # the journeys' schedules, the one background work (exporters/journeys.py)
    log.info(
        "listening",
        extra={"kv": {"address": address, "collectors": ",".join(names), "version": __version__}},
    )
    try:
        serve(server, stop)
    finally:
        runner.close()
    log.info("stopped")
    return EXIT_OK
