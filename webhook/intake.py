"""The gunicorn worker of ``sscp-ops webhook``: a ``sync`` worker that reads each request whole
before it handles it, the way Nginx buffers requests in front of sync workers.

gunicorn's ``sync`` worker reads a request from a blocking socket. A client that connects and
sends nothing, or half a request, holds that worker until the arbiter kills it (``timeout``,
30 s): with 2 workers, 4 idle connections stopped Alertmanager's notifications for over a
minute (issue 14). This worker waits for every connection in one ``selectors`` loop, reading
what arrives without blocking, and handles a request only once its head and body (by
``Content-Length``) are all there. An idle or slow client costs a file descriptor and a
buffer, never the worker; it is closed ``HEAD_TIMEOUT`` seconds after it connected, and the
oldest unfinished connection makes room when ``worker_connections`` (1000) are open. After the
answer the connection is half-closed and drained in the same loop, so a client that never
closes does not hold the worker either.

What a request costs once it is complete is the ``sync`` worker's: one request at a time, no
threads, the connection closed after the answer (so the next request goes to a free worker).
"""

from __future__ import annotations

import errno
import os
import re
import selectors
import socket
import time

from gunicorn import http, util
from gunicorn.workers.sync import SyncWorker

#: Seconds a client may take to send a whole request after connecting (Nginx:
#: client_header_timeout and client_body_timeout, 60 s each).
HEAD_TIMEOUT = 30.0
#: Seconds for one send or receive while a complete request is handled.
IO_TIMEOUT = 10.0
#: Seconds a half-closed connection is drained before it is closed.
LINGER = 2.0
#: A request larger than this is handed over after its head (the app answers 413).
MAX_BUFFER = 2 * 1024 * 1024

_LENGTH = re.compile(rb"\r\ncontent-length:[ \t]*(\d+)")


def complete(buf: bytes | bytearray) -> bool:
    """Whether ``buf`` holds a request the worker can handle without waiting for the client:
    the head and the ``Content-Length`` bytes after it. A head that announces a chunked body
    or ``Expect: 100-continue``, and a request over ``MAX_BUFFER``, are handed over as they
    are (gunicorn reads the rest, each read bounded by ``IO_TIMEOUT``)."""
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        return len(buf) > MAX_BUFFER
    head = bytes(buf[:end]).lower()
    if b"\r\ntransfer-encoding:" in head or b"\r\nexpect:" in head:
        return True
    match = _LENGTH.search(head)
    length = int(match.group(1)) if match else 0
    return len(buf) - end - 4 >= min(length, MAX_BUFFER)


class _Conn:
    __slots__ = ("sock", "addr", "listener", "buf", "deadline")

    def __init__(self, sock: socket.socket, addr, listener, deadline: float) -> None:
        self.sock = sock
        self.addr = addr
        self.listener = listener
        self.buf = bytearray()
        self.deadline = deadline


class _Buffered:
    """The client socket as gunicorn's parser reads it: the buffered bytes first."""

    def __init__(self, sock: socket.socket, data: bytearray) -> None:
        self._sock = sock
        self._data = bytes(data)

    def recv(self, size: int) -> bytes:
        if self._data:
            out, self._data = self._data[:size], self._data[size:]
            return out
        return self._sock.recv(size)


class BufferingWorker(SyncWorker):
    def run(self) -> None:
        self._sel = selectors.DefaultSelector()
        self._waiting: dict[int, _Conn] = {}  # by fd, oldest first
        self._lingering: dict[int, float] = {}  # fd -> when to close
        for listener in self.sockets:
            listener.setblocking(False)
            self._sel.register(listener, selectors.EVENT_READ, "listener")
        self._sel.register(self.PIPE[0], selectors.EVENT_READ, "wakeup")  # signals
        try:
            while self.alive:
                self.notify()
                if not self.is_parent_alive():
                    break
                ready = []
                for key, _ in self._sel.select(1.0):
                    if key.data == "listener":
                        conn = self._accept(key.fileobj)
                        if conn is not None and self._read(conn):
                            ready.append(conn)
                    elif key.data == "wakeup":
                        try:
                            os.read(self.PIPE[0], 64)
                        except OSError:
                            pass
                    elif key.data == "linger":
                        self._drain(key.fileobj)
                    elif self._read(key.data):
                        ready.append(key.data)
                for conn in ready:
                    self._serve(conn)
                self._expire(time.monotonic())
        finally:
            for conn in list(self._waiting.values()):
                self._forget(conn.sock)
            for fd in list(self._lingering):
                self._forget(self._sel.get_key(fd).fileobj)
            self._sel.close()

    def _accept(self, listener) -> _Conn | None:
        """One connection per turn: a busy worker leaves the next ones to a free worker."""
        try:
            sock, addr = listener.accept()
        except OSError as exc:
            if exc.errno in (errno.EAGAIN, errno.EWOULDBLOCK, errno.ECONNABORTED):
                return None
            raise
        sock.setblocking(False)
        util.close_on_exec(sock)
        if len(self._waiting) + len(self._lingering) >= self.cfg.worker_connections:
            oldest = next(iter(self._waiting.values()), None)
            if oldest is not None:
                self.log.warning("too many unfinished requests: closing the oldest")
                self._forget(oldest.sock)
        conn = _Conn(sock, addr, listener, time.monotonic() + HEAD_TIMEOUT)
        self._waiting[sock.fileno()] = conn
        self._sel.register(sock, selectors.EVENT_READ, conn)
        return conn

    def _read(self, conn: _Conn) -> bool:
        """Read what has arrived; True when the request is complete (it leaves the loop)."""
        try:
            data = conn.sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return False
        except OSError:
            data = b""
        if not data:  # the client went away before its request was complete
            self._forget(conn.sock)
            return False
        conn.buf += data
        if not complete(conn.buf):
            return False
        self._sel.unregister(conn.sock)
        del self._waiting[conn.sock.fileno()]
        return True

    def _serve(self, conn: _Conn) -> None:
        """The sync worker's request handling, on the buffered bytes."""
        sock, req = conn.sock, None
        sock.settimeout(IO_TIMEOUT)
        try:
            parser = http.RequestParser(self.cfg, _Buffered(sock, conn.buf), conn.addr)
            req = next(parser)
            self.handle_request(conn.listener, req, sock, conn.addr)
        except (http.errors.NoMoreData, StopIteration, TimeoutError):
            pass
        except OSError as exc:
            if exc.errno not in (errno.EPIPE, errno.ECONNRESET, errno.ENOTCONN):
                self.log.exception("Socket error processing request.")
        except BaseException as exc:  # as SyncWorker.handle: a 500 or 400 to the client
            self.handle_error(req, sock, conn.addr, exc)
        self._linger(sock)

    def _linger(self, sock: socket.socket) -> None:
        """Half-close (the client sees the end of the answer) and drain until the client
        closes, in the loop: closing with unread bytes would reset the connection."""
        try:
            sock.shutdown(socket.SHUT_WR)
            sock.setblocking(False)
        except OSError:
            sock.close()
            return
        self._lingering[sock.fileno()] = time.monotonic() + LINGER
        self._sel.register(sock, selectors.EVENT_READ, "linger")

    def _drain(self, sock: socket.socket) -> None:
        try:
            if sock.recv(65536):
                return
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            pass
        self._forget(sock)

    def _expire(self, now: float) -> None:
        for conn in [c for c in self._waiting.values() if c.deadline <= now]:
            self._forget(conn.sock)
        for fd in [fd for fd, until in self._lingering.items() if until <= now]:
            self._forget(self._sel.get_key(fd).fileobj)

    def _forget(self, sock: socket.socket) -> None:
        fd = sock.fileno()
        self._waiting.pop(fd, None)
        self._lingering.pop(fd, None)
        try:
            self._sel.unregister(sock)
        except (KeyError, ValueError):
            pass
        sock.close()
