from __future__ import annotations

from helpers import ROOT

from sscp_ops.config.reference import render_reference


def test_committed_config_reference_is_current() -> None:
    committed = (ROOT / "docs" / "config-reference.md").read_text(encoding="utf-8")
    assert committed == render_reference(), (
        "docs/config-reference.md is out of date: run `make docs`"
    )


def test_reference_lists_every_key_of_a_target() -> None:
    text = render_reference()
    for key in ("targets.redis[].address", "targets.redis[].password_file", "exporter.deadline"):
        assert f"`{key}`" in text
