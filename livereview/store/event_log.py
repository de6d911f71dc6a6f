"""The event log: every live event of a session, one JSON line each, in ``events.jsonl``.

:class:`JsonlEventLog` is a subscriber of the session's emitter (it writes on the
emitter's delivery thread, never the pipeline's); :func:`read_event_log` reads the
log back. :class:`EventSequence` hands out sequence numbers from ``events.seq``
under a file lock, so every process writing events of one session numbers them in
one series (no duplicate ``seq``), and a reopened session knows where its events
continue without reading the log.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
from collections.abc import Iterator
from pathlib import Path

from livereview.core.events import LiveEvent
from livereview.core.jsonl import read_jsonl


class JsonlEventLog:
    """A subscriber that appends every event to a JSON-lines file."""

    def __init__(self, path: os.PathLike[str] | str) -> None:
        self.path = Path(path)
        self._file = self.path.open("a", encoding="utf-8")

    def __call__(self, event: LiveEvent) -> None:
        self._file.write(event.to_json() + "\n")
        self._file.flush()

    def close(self) -> None:
        self._file.close()


def read_event_log(path: os.PathLike[str] | str) -> Iterator[LiveEvent]:
    """Lazily read the events of an event log, skipping a torn last line."""
    for record in read_jsonl(path):
        yield LiveEvent.from_dict(record)


def last_seq(path: os.PathLike[str] | str) -> int:
    """The highest ``seq`` in an event log (0 for none)."""
    return max((int(record["seq"]) for record in read_jsonl(path)), default=0)


class EventSequence:
    """Event sequence numbers shared by the processes of one session, kept in ``events.seq``.

    Parameters
    ----------
    path : path
        The counter file (``<session>/events.seq``); created from the event log's last
        ``seq`` (``log``) for sessions written before it existed.
    log : path
        The session's ``events.jsonl``.
    """

    def __init__(self, path: os.PathLike[str] | str, log: os.PathLike[str] | str) -> None:
        self.path = Path(path)
        self.log = Path(log)
        self._lock = threading.Lock()

    def next(self) -> int:
        """Take the next number (one read and one write of the counter file, under its lock)."""
        with self._lock, self._locked() as fd:
            value = self._read(fd) + 1
            os.pwrite(fd, f"{value:020d}\n".encode(), 0)
            return value

    def current(self) -> int:
        """The last number taken by any process (a read only: nothing is created or written)."""
        with self._lock:
            try:
                fd = os.open(self.path, os.O_RDONLY)
            except FileNotFoundError:
                return last_seq(self.log)
            try:
                fcntl.flock(fd, fcntl.LOCK_SH)
                text = os.pread(fd, 64, 0).strip()
            finally:
                os.close(fd)
            return int(text) if text else last_seq(self.log)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[int]:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield fd
        finally:
            os.close(fd)  # closing releases the lock

    def _read(self, fd: int) -> int:
        text = os.pread(fd, 64, 0).strip()
        if text:
            return int(text)
        value = last_seq(self.log)  # a session written before the counter existed
        os.pwrite(fd, f"{value:020d}\n".encode(), 0)
        return value
