"""Progress reporting: a no-op by default; the command hands in a terminal progress bar."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager

#: ``progress(description, total_bytes_or_None)`` -> context manager yielding ``update(n)``.
Progress = Callable[[str, int | None], AbstractContextManager[Callable[[int], None]]]


@contextmanager
def no_progress(description: str, total: int | None) -> Iterator[Callable[[int], None]]:
    yield lambda n: None
