"""One module per ``sscp-ops`` subcommand; each has ``add_parser(subparsers)`` and sets ``func``.

Shared here: exit codes, the ``--log.level`` option and loading the config (the embedded
defaults when no file is given).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from importlib import resources

from sscp_ops.config import Config, load_config, parse_config

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2
LOG_LEVELS = ("debug", "info", "warning", "error")


def add_log_level(parser: argparse.ArgumentParser, levels: Sequence[str] = LOG_LEVELS) -> None:
    """``--log.level`` (default info), as every subcommand spells it."""
    parser.add_argument("--log.level", dest="log_level", default="info", choices=list(levels))


def default_config() -> Config:
    text = resources.files("sscp_ops").joinpath("defaults/exporter.yml").read_text("utf-8")
    return parse_config(text, "<embedded defaults>")


def load(path: str | None) -> Config:
    return default_config() if path is None else load_config(path)
