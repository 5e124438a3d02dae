"""Structured (logfmt) log lines on stderr, the way Prometheus components write them.

    ts=2026-11-28T20:56:22.123Z level=info logger=exporter msg="listening" address=127.0.0.1:9810

Callers pass context through ``extra={"kv": {...}}``; values are quoted when needed.
Secrets must never be passed in: the formatter cannot know what is secret.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Mapping
from typing import IO, Any


def _quote(value: Any) -> str:
    text = str(value)
    if text == "" or any(c in text for c in ' "=\n\t'):
        text = '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    return text


class LogfmtFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        parts = [
            f"ts={ts}.{int(record.msecs):03d}Z",
            f"level={record.levelname.lower()}",
            f"logger={_quote(record.name)}",
            f"msg={_quote(record.getMessage())}",
        ]
        kv = getattr(record, "kv", None)
        if isinstance(kv, Mapping):
            parts.extend(f"{k}={_quote(v)}" for k, v in kv.items())
        if record.exc_info and record.exc_info[0] is not None:
            parts.append(f"err={_quote(repr(record.exc_info[1]))}")
        return " ".join(parts)


def setup_logging(level: str = "info", stream: IO[str] | None = None) -> None:
    """Configure the root logger once, from the CLI (never at import time)."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(LogfmtFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
