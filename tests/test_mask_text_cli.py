"""``sscp-ops mask text``: standard input to standard output."""

from __future__ import annotations

import subprocess

from helpers import sscp_ops_cmd


def test_mask_text_stdin_to_stdout() -> None:
    text = "来电 13812345678，身份证 11010519491231002X，订单 202611281234567890\nok\n"
    proc = subprocess.run(
        sscp_ops_cmd("mask", "text"), input=text, capture_output=True, text=True, timeout=30
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == (
        "来电 138****5678，身份证 110105********002X，订单 202611281234567890\nok\n"
    )
