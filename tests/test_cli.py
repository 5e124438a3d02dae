from __future__ import annotations

import subprocess

from helpers import sscp_ops_cmd

from sscp_ops.cli import COMMANDS, build_parser


def test_every_subcommand_registered_once_and_listed_in_help() -> None:
    assert len(COMMANDS) == len(set(COMMANDS))
    parser = build_parser()
    helptext = parser.format_help()
    for name in COMMANDS:
        assert name in helptext


def test_top_level_help_runs() -> None:
    result = subprocess.run(sscp_ops_cmd("--help"), capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "exporter" in result.stdout and "stack" in result.stdout
