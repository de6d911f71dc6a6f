"""One writer per session directory: the lock a run or a rerun holds, naming its holder.

A run and a rerun change a session's results; two at once (two notebooks, two
processes, two :class:`Session` objects) would mix them. :class:`WriterLock` is an
operating-system file lock on ``<session>/.writer.lock`` (released by the system when
its process dies, so a killed writer never blocks the next one) with a note beside it,
``writer.json``, saying who holds it: pid, host, what it does, since when. Readers
(the review, the server, exports) never take it.

Usage
-----
>>> with WriterLock(session_dir).hold("run"):            # doctest: +SKIP
...     ...
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from livereview.core.jsonl import read_json, write_json_atomic

logger = logging.getLogger(__name__)

LOCK_NAME = ".writer.lock"
HOLDER_NAME = "writer.json"


class SessionBusyError(RuntimeError):
    """Another run or rerun is writing the session; ``holder`` says who."""

    def __init__(self, message: str, holder: dict[str, Any]) -> None:
        super().__init__(message)
        self.holder = holder


class WriterLock:
    """The session directory's writer lock (see the module docstring).

    Parameters
    ----------
    directory : path
        The session directory.
    """

    def __init__(self, directory: os.PathLike[str] | str) -> None:
        self.directory = Path(directory)
        self._lock = FileLock(self.directory / LOCK_NAME, thread_local=False, is_singleton=False)
        self.holder_path = self.directory / HOLDER_NAME

    def holder(self) -> dict[str, Any] | None:
        """Who holds the lock now, or None."""
        if not self.holder_path.exists():
            return None
        try:
            self._lock.acquire(timeout=0)
        except Timeout:
            return read_json(self.holder_path)
        self._lock.release()
        return None

    def acquire(self, what: str) -> None:
        """Take the lock for ``what`` (``"run"``, ``"rerun r0003"``...) or raise :class:`SessionBusyError`."""
        try:
            self._lock.acquire(timeout=0)
        except Timeout:
            holder = read_json(self.holder_path, {}) or {}
            raise SessionBusyError(_busy_message(self.directory, holder, what), holder) from None
        stale = read_json(self.holder_path)
        if stale:
            logger.warning(
                "session %s: the writer lock of %s (pid %s on %s, since %s) was left by a process that ended; "
                "taking it over",
                self.directory,
                stale.get("what"),
                stale.get("pid"),
                stale.get("host"),
                stale.get("since"),
            )
        write_json_atomic(
            self.holder_path,
            {
                "what": what,
                "pid": os.getpid(),
                "host": socket.gethostname(),
                "since": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            },
        )

    def release(self) -> None:
        self.holder_path.unlink(missing_ok=True)
        self._lock.release()

    @contextlib.contextmanager
    def hold(self, what: str) -> Iterator[WriterLock]:
        """Hold the lock for the duration of a ``with`` block."""
        self.acquire(what)
        try:
            yield self
        finally:
            self.release()


def _busy_message(directory: Path, holder: dict[str, Any], what: str) -> str:
    who = (
        f"{holder.get('what', 'a writer')} (pid {holder.get('pid', '?')} on {holder.get('host', '?')}, "
        f"since {holder.get('since', '?')})"
    )
    return (
        f"cannot {what} session {directory.name!r}: it is being written by {who}; "
        "wait for it to end (reading, reviewing and exporting it work meanwhile)"
    )
