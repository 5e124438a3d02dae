"""The ``sscp-ops`` command: one console script, a subcommand per job.

The CLI wires things together: it loads the config, builds collectors or services and hands
them their dependencies. Exit codes: 0 success, 1 runtime failure, 2 bad usage or config.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from collections.abc import Sequence
from importlib import resources

from sscp_ops import __version__
from sscp_ops.config import Config, ConfigError, load_config, parse_config
from sscp_ops.logs import setup_logging

log = logging.getLogger("sscp-ops")

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2


def default_config() -> Config:
    text = resources.files("sscp_ops").joinpath("defaults/exporter.yml").read_text("utf-8")
    return parse_config(text, "<embedded defaults>")


def _load(path: str | None) -> Config:
    return default_config() if path is None else load_config(path)


# --- exporter -------------------------------------------------------------------------------


def _add_exporter(sub: argparse._SubParsersAction) -> None:
    from exporters.catalog import CATALOG

    p = sub.add_parser("exporter", help="serve Prometheus metrics for the configured sources")
    p.add_argument("--config.file", dest="config_file", metavar="FILE", help="YAML config file")
    p.add_argument(
        "--web.listen-address",
        dest="listen_address",
        metavar="HOST:PORT",
        help="address to listen on (default: exporter.listen_address, 127.0.0.1:9810)",
    )
    p.add_argument(
        "--log.level",
        dest="log_level",
        default="info",
        choices=["debug", "info", "warning", "error"],
    )
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

    config = _load(args.config_file)
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


# --- entry point ------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sscp-ops",
        description="Operations kit for the Smart Supervision Command Platform "
        "(智慧监管综合指挥平台).",
    )
    parser.add_argument("--version", action="version", version=f"sscp-ops {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    _add_exporter(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    setup_logging(getattr(args, "log_level", "info"))
    try:
        return args.func(args)
    except ConfigError as exc:
        print(f"sscp-ops {args.command}: config error: {exc}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
