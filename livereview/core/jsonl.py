"""JSON lines, the format of every log in a session directory: append, rewrite, read, follow.

One JSON object per line, UTF-8, newline-terminated. A line counts only once its
newline is written, so a process killed in the middle of an append leaves a *torn*
last line that every reader here skips (and a writer may set aside). What a
reader does with an unparsable line that *other lines follow* is its policy:
``"skip"`` (with a warning) for logs where one bad line must not hide the rest,
``"raise"`` for the override log, where it means the file was edited by hand.

Usage
-----
>>> import tempfile, pathlib
>>> path = pathlib.Path(tempfile.mkdtemp()) / "log.jsonl"
>>> append_jsonl(path, [{"seq": 1}, {"seq": 2}])
>>> [record["seq"] for record in read_jsonl(path)]
[1, 2]
>>> tail = JsonlTail(path)
>>> [record["seq"] for record in tail.read()]
[1, 2]
>>> append_jsonl(path, [{"seq": 3}])
>>> [record["seq"] for record in tail.read()]
[3]
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, Literal

import orjson

logger = logging.getLogger(__name__)

Record = dict[str, Any]
#: What to do with an unparsable line that other lines follow.
CorruptLinePolicy = Literal["skip", "raise"]
_READ_BLOCK = 1 << 20


class JsonlCorruptError(ValueError):
    """A JSON-lines file holds an unparsable line before other lines: it was damaged or edited by hand."""


def dumps(record: Any) -> str:
    """One compact JSON line's text (without the newline), non-ASCII kept as is."""
    return json.dumps(record, ensure_ascii=False, separators=(",", ":"))


def _loads(line: bytes) -> Any:
    """One JSON value: orjson, and the standard parser for what orjson refuses but Python writes (NaN)."""
    try:
        return orjson.loads(line)
    except orjson.JSONDecodeError:
        return json.loads(line)


def parse_lines(data: bytes, *, source: object, corrupt: CorruptLinePolicy = "skip") -> tuple[list[Record], int]:
    """Parse the complete lines of ``data``; return the records and how many bytes they span.

    Parsing stops before an incomplete last line, and before an unparsable *last*
    complete line (both are a torn append, which a later read may see finished).

    Parameters
    ----------
    data : bytes
        Bytes read from a JSON-lines file, from the start of a line.
    source : object
        Named in warnings and errors (the file's path).
    corrupt : {"skip", "raise"}
        What to do with an unparsable line that other lines follow: skip it with a
        warning, or raise :class:`JsonlCorruptError`.
    """
    records: list[Record] = []
    used = 0
    while (end := data.find(b"\n", used)) >= 0:
        try:
            record = _loads(data[used:end])
            if not isinstance(record, dict):
                msg = f"a line holds a JSON {type(record).__name__}, not an object"
                raise ValueError(msg)
        except ValueError as error:
            if data.find(b"\n", end + 1) < 0:
                break  # the last complete line: a torn append
            if corrupt == "raise":
                msg = (
                    f"{source} has an unparsable record ({error}) after record {len(records)}, followed by "
                    "more records: it was damaged or edited by hand; move the bad line out after checking it"
                )
                raise JsonlCorruptError(msg) from error
            logger.warning("%s: skipped an unparsable line after record %d (%s)", source, len(records), error)
        else:
            records.append(record)
        used = end + 1
    return records, used


def read_jsonl(path: os.PathLike[str] | str, *, corrupt: CorruptLinePolicy = "skip") -> Iterator[Record]:
    """The records of a JSON-lines file, streamed; a torn last line is skipped with a warning.

    A missing file reads as empty.
    """
    path = Path(path)
    try:
        stream = path.open("rb")
    except FileNotFoundError:
        return
    with stream:
        pending = b""
        while block := stream.read(_READ_BLOCK):
            data = pending + block
            records, used = parse_lines(data, source=path, corrupt=corrupt)
            yield from records
            pending = data[used:]
    if pending.strip():
        logger.warning("%s ends in a torn line (an interrupted write); ignored", path)


def append_jsonl(path: os.PathLike[str] | str, records: Iterable[Any], *, sync: bool = False) -> None:
    """Append records as JSON lines in a single write (``fsync`` too with ``sync``)."""
    text = "".join(dumps(record) + "\n" for record in records)
    if not text:
        return
    with Path(path).open("a", encoding="utf-8") as stream:
        stream.write(text)
        stream.flush()
        if sync:
            os.fsync(stream.fileno())


def rewrite_jsonl(path: os.PathLike[str] | str, records: Iterable[Any]) -> None:
    """Replace a JSON-lines file in one step: write a temporary file, sync it, rename it over."""
    path = Path(path)
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.unlink(missing_ok=True)
    temporary.touch()
    append_jsonl(temporary, records, sync=True)
    temporary.replace(path)


def write_json_atomic(path: os.PathLike[str] | str, data: Any) -> None:
    """Replace a JSON file with ``data`` in one step (write, sync, rename)."""
    path = Path(path)
    temporary = path.with_name(f".{path.name}.tmp")
    with temporary.open("w", encoding="utf-8") as stream:
        json.dump(data, stream, indent=2, ensure_ascii=False)
        stream.flush()
        os.fsync(stream.fileno())
    temporary.replace(path)


def read_json(path: os.PathLike[str] | str, default: Any = None) -> Any:
    """A JSON file's content, or ``default`` when the file does not exist."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return default


def numbered_json_lines(path: os.PathLike[str] | str) -> Iterator[tuple[int, Any]]:
    """``(line number, parsed value)`` for each non-blank line of a JSON-lines file people wrote.

    Strict, for input files (transcripts, training data): a line that is not JSON is an
    error naming the file and the line, not a torn append to skip.

    Raises
    ------
    ValueError
        On a line that is not JSON, naming the file and the line.
    """
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            yield number, json.loads(line)
        except json.JSONDecodeError as error:
            msg = f"{path} line {number}: not JSON ({error.msg}); each line must be one JSON object"
            raise ValueError(msg) from error


class JsonlTail:
    """Follow a JSON-lines file that others append to: each :meth:`read` returns the new records.

    Only complete lines are consumed; a torn or unparsable last line is read again
    next time. A file that shrank (a torn tail cut off) or was replaced (rewritten
    and renamed over) is read again from its start and :attr:`restarted` says so.

    Parameters
    ----------
    path : path
        The file to follow; it may not exist yet.
    corrupt : {"skip", "raise"}
        Policy for an unparsable line that other lines follow (see :func:`parse_lines`).
    """

    def __init__(self, path: os.PathLike[str] | str, *, corrupt: CorruptLinePolicy = "skip") -> None:
        self.path = Path(path)
        self.corrupt = corrupt
        self.offset = 0
        self.restarted = False
        self._identity: tuple[int, int] | None = None

    def read(self) -> list[Record]:
        """Records appended since the last read (all of them on the first read)."""
        self.restarted = False
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            return []
        identity = (stat.st_dev, stat.st_ino)
        if stat.st_size < self.offset or (self._identity is not None and identity != self._identity):
            self.offset, self.restarted = 0, True  # cut short, or replaced by a rewrite
        self._identity = identity
        if stat.st_size == self.offset:
            return []
        with self.path.open("rb") as stream:
            stream.seek(self.offset)
            data = stream.read(stat.st_size - self.offset)
        records, used = parse_lines(data, source=self.path, corrupt=self.corrupt)
        self.offset += used
        return records

    def start_at_end(self) -> None:
        """Skip what the file holds now: the next read returns only what is appended later."""
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            return
        self.offset, self._identity = stat.st_size, (stat.st_dev, stat.st_ino)
