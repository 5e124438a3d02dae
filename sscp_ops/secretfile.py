"""A secret kept in a file, re-read only when the file changes.

Services that check a shared token on every request (the webhook checks Alertmanager's on each
notification) stat the file instead of opening and reading it each time; a rotated token is
picked up on the next request, without a restart.
"""

from __future__ import annotations

import os
from pathlib import Path


class SecretFile:
    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._cached: tuple[tuple | None, str | None] = (None, None)

    def get(self) -> str | None:
        """The file's content without surrounding whitespace; None when no file is configured.
        Raises OSError when the configured file can't be read."""
        if self.path is None:
            return None
        st = os.stat(self.path)
        key = (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
        seen, value = self._cached
        if seen == key:
            return value
        value = self.path.read_text(encoding="utf-8").strip()
        self._cached = (key, value)  # one tuple: threads never see a torn pair
        return value
