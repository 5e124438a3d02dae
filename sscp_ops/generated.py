"""Files generated from sources in the repository (rules from templates, dashboards from
grafana/build.py): write the ones that changed, or with ``check`` only report them."""

from __future__ import annotations

import sys
from pathlib import Path


def sync_generated(files: dict[Path, str], check: bool, make_target: str, done: str) -> int:
    """Write each changed file of ``files`` (path -> text) and print ``done`` + its name; with
    ``check`` write nothing and return 1 listing them when any differs."""
    stale = []
    for path, text in files.items():
        current = path.read_text(encoding="utf-8") if path.exists() else None
        if current == text:
            continue
        stale.append(path.name)
        if not check:
            path.write_text(text, encoding="utf-8")
    if check and stale:
        print(f"out of date, run `make {make_target}`: {', '.join(stale)}", file=sys.stderr)
        return 1
    for name in stale:
        print(f"{done}{name}")
    return 0
