"""Pure parts of process lifetime and intake: the supervisor's backoff (on a fake clock and a
fake child) and when the buffering gunicorn worker has a whole request."""

from __future__ import annotations

import pytest

from sscp_ops.lifetime import Supervised
from webhook.intake import MAX_BUFFER, complete


class FakeProc:
    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.returncode: int | None = None

    def poll(self) -> int | None:
        return self.returncode


def test_backoff_doubles_while_the_child_keeps_dying_and_resets_after_a_steady_run() -> None:
    now = [0.0]
    started: list[float] = []

    def spawn(argv) -> FakeProc:
        started.append(now[0])
        return FakeProc(len(started))

    sup = Supervised("child", ["true"], clock=lambda: now[0], spawn=spawn)
    sup.start()

    def die_and_wait_for_restart(after: float) -> float:
        now[0] += after
        sup.proc.returncode = -9
        died, count = now[0], len(started)
        while len(started) == count:
            sup.check()
            now[0] += 0.25
        return started[-1] - died

    assert [die_and_wait_for_restart(1) for _ in range(7)] == [1, 2, 4, 8, 16, 30, 30]
    assert die_and_wait_for_restart(60) == 0  # after a steady minute: at once
    assert die_and_wait_for_restart(1) == 1
    assert sup.restarts == 9
    sup.check()
    assert len(started) == 10  # a running child is left alone


@pytest.mark.parametrize(
    ("buf", "whole"),
    [
        (b"", False),
        (b"POST / HTTP/1.1\r\nHost: x\r\n", False),
        (b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", True),
        (b"POST / HTTP/1.1\r\nContent-Length: 4\r\n\r\nabc", False),
        (b"POST / HTTP/1.1\r\ncontent-length:  4\r\n\r\nabcd", True),
        (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", True),
        (b"POST / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 9\r\n\r\n", True),
        (b"POST / HTTP/1.1\r\nContent-Length: 99999999\r\n\r\n" + b"x" * MAX_BUFFER, True),
        (b"GET /" + b"x" * MAX_BUFFER, True),  # no end of head in sight: gunicorn answers 400
    ],
)
def test_a_request_is_whole(buf: bytes, whole: bool) -> None:
    assert complete(buf) is whole
