"""The ``sscp-ops`` command: one console script, a subcommand per job.

The CLI wires things together: it loads the config, builds collectors or services and hands
them their dependencies. Exit codes: 0 success, 1 runtime failure, 2 bad usage or config.
Each subcommand lives in its own module under :mod:`sscp_ops.commands`.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from sscp_ops import __version__
from sscp_ops.commands import EXIT_USAGE
from sscp_ops.config import ConfigError
from sscp_ops.logs import setup_logging

#: Subcommand modules under sscp_ops.commands, in the order ``--help`` lists them.
COMMANDS = (
    "exporter",
    "webhook",
    "report",
    "logs",
    "mask",
    "vulns",
    "review",
    "backup",
    "stack",
    "journeys",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sscp-ops",
        description="Operations kit for the Smart Supervision Command Platform "
        "(智慧监管综合指挥平台).",
    )
    parser.add_argument("--version", action="version", version=f"sscp-ops {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        importlib.import_module(f"sscp_ops.commands.{name}").add_parser(sub)
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
