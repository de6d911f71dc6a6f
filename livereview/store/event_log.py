"""The event log: every live event of a session, one JSON line each, in ``events.jsonl``.

:class:`JsonlEventLog` is a subscriber of the session's emitter (it writes on the
emitter's delivery thread, never the pipeline's); :func:`read_event_log` reads the
log back, and :func:`last_seq` tells where a reopened session's events continue.
"""

from __future__ import annotations

import os
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
