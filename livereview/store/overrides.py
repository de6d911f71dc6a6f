"""Operator corrections: an append-only override log, its folded state and its index.

Every correction is an :class:`OverrideRecord`, one JSON line appended to
``<session_dir>/overrides/overrides.jsonl``; lines are never rewritten. The current
value of a segment's field is the fold of the log: the record with the highest
``seq`` wins. ``overrides_index.json`` beside it caches that fold (current records,
undo stacks, and the size and SHA-256 of the log prefix it reflects) so a reopened
store need not parse the whole log; it is rebuilt whenever it is missing, corrupt or
does not match the log.

Durability: a batch is encoded, written with one ``write`` under a
:class:`filelock.FileLock` (other kernels on the same recorded session wait) and
``fsync``-ed before the call returns. A torn last line, left by a process killed
in the middle of an append, is moved aside to ``overrides/torn-<timestamp>.jsonl``
when the store next takes the lock.

Usage
-----
::

    store = OverrideStore(session_dir, "my_session", lambda: EditContext(segments, {0}, {"Dana"}))
    store.set("c00000-s001", user="ana", speaker_id="Dana", reason="misattributed")
    view = merged_view(segments, store.current_values())
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import logging
import os
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
from filelock import FileLock

from livereview.core.corrections import CORRECTION_FIELDS, STRUCTURE_FIELDS
from livereview.core.jsonl import JsonlCorruptError, parse_lines
from livereview.core.roles import EDITOR, check_writer
from livereview.store.override_rules import (
    ConfirmationRequiredError,
    EditContext,
    OverrideError,
    base_value,
    changes_from_frame,
    confirm_message,
    moves_boundaries,
    standing_context,
    validated_changes,
)

logger = logging.getLogger(__name__)


SET, REVERT = "set", "revert"
OPS = (SET, REVERT)

OVERRIDES_DIR = "overrides"
LOG_NAME = "overrides.jsonl"
INDEX_NAME = "overrides_index.json"
INDEX_FORMAT = 1
_READ_BLOCK = 1 << 20


@dataclass(frozen=True)
class OverrideRecord:
    """One line of the override log.

    Parameters
    ----------
    override_id : str
        uuid4 hex of this record.
    seq : int
        Position in the log (1, 2, ...); the highest ``seq`` wins.
    session_id, segment_id, field : str
        What is overridden.
    value : Any
        The value in effect after this record.
    previous_value : Any
        The value in effect before it: the previous override or the base value.
    user, role : str
        Who wrote it, as what.
    timestamp : str
        UTC time, ISO 8601.
    reason : str or None
        Why, in the operator's words.
    batch_id : str
        uuid4 hex shared by the records written together.
    op : str
        ``"set"``, or ``"revert"`` for a record written by an undo.
    reverts : str or None
        For a revert, the ``batch_id`` it undoes.
    restores_base : bool
        For a revert, True when ``value`` is the base value: the field is then no
        longer overridden.
    """

    override_id: str
    seq: int
    session_id: str
    segment_id: str
    field: str
    value: Any
    previous_value: Any
    user: str
    role: str
    timestamp: str
    reason: str | None
    batch_id: str
    op: str = SET
    reverts: str | None = None
    restores_base: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in RECORD_COLUMNS}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> OverrideRecord:
        unknown = data.keys() - set(RECORD_COLUMNS)
        if unknown:
            msg = f"unknown override record fields {sorted(unknown)}; expected {RECORD_COLUMNS}"
            raise ValueError(msg)
        if data.get("op", SET) not in OPS:
            msg = f"unknown override op {data.get('op')!r}; expected one of {OPS}"
            raise ValueError(msg)
        return cls(**data)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, separators=(",", ":"))


RECORD_COLUMNS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(OverrideRecord))
#: Columns of :meth:`OverrideStore.current`.
CURRENT_COLUMNS = (
    "segment_id",
    "field",
    "value",
    "base_value",
    "user",
    "role",
    "timestamp",
    "seq",
    "reason",
    "batch_id",
)

BatchCallback = Callable[[list[OverrideRecord]], Any]
Change = tuple[str, str, Any]  # (segment_id, field, value)


class OverrideStore:
    """The append-only override log of one recorded session, and its folded state.

    Parameters
    ----------
    session_dir : path-like
        The session's folder; the log lives in its ``overrides/`` subfolder.
    session_id : str
        Stamped on every record.
    context : callable
        Returns the :class:`EditContext` overrides are validated against; called
        once per write, so it may reflect a session still being processed.

    Notes
    -----
    Several processes may open the same store: each picks up the others' records
    before every read and every write. Undo walks back one user's batches; it
    restores the values in effect before the batch, even where another user has
    changed the same field since (that change stays in the log).
    """

    def __init__(
        self,
        session_dir: os.PathLike[str] | str,
        session_id: str,
        context: Callable[[], EditContext],
    ) -> None:
        self.session_id = session_id
        self.directory = Path(session_dir) / OVERRIDES_DIR
        self.directory.mkdir(parents=True, exist_ok=True)
        self.log_path = self.directory / LOG_NAME
        self.index_path = self.directory / INDEX_NAME
        self._context = context
        self._lock = threading.RLock()
        # Other kernels appending to this session wait on it, retrying every 5 ms.
        self._file_lock = FileLock(self.directory / f"{LOG_NAME}.lock", poll_interval=0.005)
        self._subscribers: list[BatchCallback] = []
        self._indexed: tuple[int, str] | None = None
        self._reset()
        with self._exclusive(load_index=True):
            self._write_index_if_behind()

    # -- writing ---------------------------------------------------------------------------

    def set(
        self,
        segment_id: str,
        *,
        user: str,
        role: str = EDITOR,
        reason: str | None = None,
        allow_new_speaker: bool = False,
        **fields: Any,
    ) -> list[OverrideRecord]:
        """Override fields of one segment, as one batch.

        Parameters
        ----------
        segment_id : str
            The segment to correct.
        user : str
            Who corrects it.
        role : str
            ``"editor"`` or ``"admin"``; a ``"viewer"`` is refused.
        reason : str, optional
            Why, kept in the log.
        allow_new_speaker : bool
            Accept a ``speaker_id`` that is not among the known speakers.
        **fields
            Field name to new value, among :data:`~livereview.core.corrections.CORRECTION_FIELDS`
            (boundaries included: ``start``, ``end``, ``split``, ``merged_into``).

        Returns
        -------
        list of OverrideRecord
            The records written, already on disk.
        """
        if not fields:
            msg = (
                f"no field given for segment {segment_id!r}; pass at least one of "
                f"{CORRECTION_FIELDS} as a keyword, e.g. speaker_id='Dana'"
            )
            raise OverrideError(msg)
        changes = [(segment_id, name, value) for name, value in fields.items()]
        what = f"override {sorted(fields)} of segment {segment_id!r}"
        return self._write_batch(changes, what, user, role, reason, allow_new_speaker, True)

    def apply_batch(
        self,
        frame: pd.DataFrame,
        *,
        user: str,
        confirm: bool,
        role: str = EDITOR,
        reason: str | None = None,
        allow_new_speaker: bool = False,
    ) -> str:
        """Apply many overrides at once, all or nothing.

        Parameters
        ----------
        frame : pandas.DataFrame
            A ``segment_id`` column (or the index) and one column per field to set;
            a missing cell (NaN, None) leaves that field alone.
        user, role, reason, allow_new_speaker
            As for :meth:`set`.
        confirm : bool
            Must be True to write; otherwise :class:`ConfirmationRequiredError` says what
            would change.

        Returns
        -------
        str
            The ``batch_id`` of the records written.
        """
        changes = changes_from_frame(frame)
        if not changes:
            msg = "batch has no filled cell: nothing to apply; fill the cells of the fields to set"
            raise OverrideError(msg)
        what = f"apply a batch of {len({c[0] for c in changes})} segments"
        records = self._write_batch(changes, what, user, role, reason, allow_new_speaker, confirm)
        return records[0].batch_id

    def undo_last_batch(self, user: str, *, role: str = EDITOR) -> str | None:
        """Revert ``user``'s last batch that is not undone yet.

        Appends one revert record per field of that batch, restoring the value in
        effect before it; nothing is deleted. Calling it again undoes the batch before.

        Returns
        -------
        str or None
            The ``batch_id`` undone, or None when ``user`` has nothing left to undo.
        """
        check_writer(user, role, f"undo the last batch of {user!r}", invalid=OverrideError)
        with self._exclusive() as fd:
            stack = self._open_batches.get(user)
            if not stack:
                return None
            undone = stack[-1]
            records = self._new_records(
                self._context(),
                self._state_before(fd, undone),
                user=user,
                role=role,
                reason=f"undo of batch {undone}",
                op=REVERT,
                reverts=undone,
            )
            self._append(fd, records)
        self._notify(records)
        return undone

    def subscribe(self, callback: BatchCallback) -> Callable[[], None]:
        """Call ``callback(records)`` after each batch this store writes is on disk.

        Returns
        -------
        callable
            Call it to unsubscribe.
        """
        with self._lock:
            self._subscribers = [*self._subscribers, callback]

        def unsubscribe() -> None:
            with self._lock:
                self._subscribers = [s for s in self._subscribers if s is not callback]

        return unsubscribe

    # -- reading ---------------------------------------------------------------------------

    @property
    def seq(self) -> int:
        """The highest ``seq`` folded so far."""
        return self._seq

    def refresh(self) -> None:
        """Fold records other processes have appended since the last read."""
        with self._lock:
            try:
                fd = os.open(self.log_path, os.O_RDONLY)
            except FileNotFoundError:
                return
            try:
                self._catch_up(fd, repair=False)
            finally:
                os.close(fd)

    def log(self) -> pd.DataFrame:
        """Every record, in ``seq`` order, one row each (columns :data:`RECORD_COLUMNS`)."""
        with self._lock:
            self.refresh()
            with self.log_path.open("rb") as handle:
                data = handle.read(self._offset)
        records, _ = _parse_lines(data, self.log_path)
        return pd.DataFrame([r.to_dict() for r in records], columns=list(RECORD_COLUMNS))

    def current(self) -> pd.DataFrame:
        """One row per overridden segment and field (columns :data:`CURRENT_COLUMNS`), by seq."""
        with self._lock:
            self.refresh()
            records = sorted(self._records(), key=lambda r: r.seq)
        segments = self._context().segments
        rows = [{**r.to_dict(), "base_value": base_value(segments, r.segment_id, r.field)} for r in records]
        return pd.DataFrame(rows, columns=list(CURRENT_COLUMNS))

    def current_values(self) -> dict[str, dict[str, Any]]:
        """Segment id -> field -> current value, for :func:`livereview.review.view.merged_view`."""
        with self._lock:
            self.refresh()
            return self._values()

    def write_index(self) -> None:
        """Bring ``overrides_index.json`` up to date with the log."""
        with self._exclusive():
            self._write_index_if_behind()

    def close(self) -> None:
        """Write the index; the store stays usable."""
        self.write_index()

    def __enter__(self) -> OverrideStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- internals -------------------------------------------------------------------------

    def _reset(self) -> None:
        self._splits_and_merges: set[tuple[str, str]] = set()  # (segment, field) of splits and merges in effect
        self._current: dict[str, dict[str, OverrideRecord]] = {}
        self._open_batches: dict[str, list[str]] = {}
        self._seq = 0
        self._offset = 0
        self._hash = hashlib.sha256()

    def _values(self) -> dict[str, dict[str, Any]]:
        """Segment id -> field -> current value, as folded so far."""
        return {sid: {name: r.value for name, r in fields.items()} for sid, fields in self._current.items()}

    def _records(self) -> Iterator[OverrideRecord]:
        for fields in self._current.values():
            yield from fields.values()

    @contextlib.contextmanager
    def _exclusive(self, *, load_index: bool = False) -> Iterator[int]:
        """Hold the thread and file locks with the log open and folded up to its end."""
        with self._lock, self._file_lock:
            created = not self.log_path.exists()
            fd = os.open(self.log_path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                if created:
                    _fsync_directory(self.directory)
                if load_index:
                    self._load_index(fd)
                self._catch_up(fd, repair=True)
                yield fd
            finally:
                os.close(fd)

    def _write_batch(
        self,
        changes: list[Change],
        what: str,
        user: str,
        role: str,
        reason: str | None,
        allow_new_speaker: bool,
        confirm: bool,
    ) -> list[OverrideRecord]:
        check_writer(user, role, what, invalid=OverrideError)
        with self._exclusive() as fd:
            ctx = self._context()
            if self._splits_and_merges or moves_boundaries(changes, ctx):  # check against the segments as they stand
                ctx = standing_context(ctx, self._values())
            changes = validated_changes(changes, ctx, allow_new_speaker)
            if not confirm:
                same = sum(self._in_effect(ctx, s, n) == v for s, n, v in changes)
                raise ConfirmationRequiredError(confirm_message(changes, same))
            items = [{"segment_id": s, "field": n, "value": v} for s, n, v in changes]
            records = self._new_records(ctx, items, user=user, role=role, reason=reason)
            self._append(fd, records)
        self._notify(records)
        return records

    def _new_records(self, ctx: EditContext, items: list[dict[str, Any]], **batch: Any) -> list[OverrideRecord]:
        """One record per item (segment_id, field, value, ...), numbered after the last seq.

        ``batch`` holds the fields shared by the batch (user, role, reason, op, ...).
        """
        batch |= {"session_id": self.session_id, "batch_id": uuid.uuid4().hex, "timestamp": _now()}
        return [
            OverrideRecord(
                override_id=uuid.uuid4().hex,
                seq=seq,
                previous_value=self._in_effect(ctx, item["segment_id"], item["field"]),
                **item,
                **batch,
            )
            for seq, item in enumerate(items, self._seq + 1)
        ]

    def _in_effect(self, ctx: EditContext, segment_id: str, name: str) -> Any:
        """The current override of a field, or its base value."""
        record = self._current.get(segment_id, {}).get(name)
        return base_value(ctx.segments, segment_id, name) if record is None else record.value

    def _append(self, fd: int, records: list[OverrideRecord]) -> None:
        """Write ``records`` durably and fold them; the caller holds the locks."""
        data = "".join(f"{r.to_json()}\n" for r in records).encode("utf-8")
        self._write(fd, data)
        for record in records:
            self._fold(record)
        self._hash.update(data)
        self._offset += len(data)

    def _write(self, fd: int, data: bytes) -> None:
        """Append ``data`` with one ``write`` and ``fsync`` it."""
        written = os.write(fd, data)
        while written < len(data):  # a regular file takes it all at once; be safe anyway
            written += os.write(fd, data[written:])
        os.fsync(fd)

    def _notify(self, records: list[OverrideRecord]) -> None:
        for callback in self._subscribers:
            try:
                callback(records)
            except Exception:
                logger.exception("override subscriber %r raised; the batch is on disk", callback)

    def _fold(self, record: OverrideRecord) -> None:
        if record.seq <= self._seq:
            msg = (
                f"override log {self.log_path} is out of order: seq {record.seq} follows "
                f"seq {self._seq}; the log was edited by hand, restore it from a backup"
            )
            raise OverrideError(msg)
        self._seq = record.seq
        self._track_structure(record)
        fields = self._current.setdefault(record.segment_id, {})
        if record.restores_base:
            fields.pop(record.field, None)
            if not fields:
                del self._current[record.segment_id]
        else:
            fields[record.field] = record
        stack = self._open_batches.setdefault(record.user, [])
        if record.op == REVERT:
            if record.reverts in stack:
                stack.remove(record.reverts)
        elif not stack or stack[-1] != record.batch_id:
            stack.append(record.batch_id)

    def _track_structure(self, record: OverrideRecord) -> None:
        if record.field not in STRUCTURE_FIELDS:
            return
        key = (record.segment_id, record.field)
        if record.restores_base or record.value is None:
            self._splits_and_merges.discard(key)
        else:
            self._splits_and_merges.add(key)

    def _catch_up(self, fd: int, *, repair: bool) -> None:
        """Fold the complete lines past ``_offset``; with ``repair``, set a torn tail aside."""
        size = os.fstat(fd).st_size
        if size < self._offset:
            logger.warning(
                "override log %s shrank from %d to %d bytes behind this store; re-reading it",
                self.log_path,
                self._offset,
                size,
            )
            self._reset()
        if size == self._offset:
            return
        data = os.pread(fd, size - self._offset, self._offset)
        records, used = _parse_lines(data, self.log_path)
        for record in records:
            self._fold(record)
        self._hash.update(data[:used])
        self._offset += used
        if repair and used < len(data):
            self._set_aside(fd, data[used:])

    def _set_aside(self, fd: int, torn: bytes) -> None:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        path = self.directory / f"torn-{stamp}.jsonl"
        with path.open("xb") as handle:
            handle.write(torn)
            handle.flush()
            os.fsync(handle.fileno())
        os.ftruncate(fd, self._offset)
        os.fsync(fd)
        _fsync_directory(self.directory)
        logger.warning(
            "override log %s ended in a torn line (%d bytes, from an append that did not "
            "finish); moved it to %s and kept the %d acknowledged records",
            self.log_path,
            len(torn),
            path,
            self._seq,
        )

    def _state_before(self, fd: int, batch_id: str) -> list[dict[str, Any]]:
        """Segment, field, value and whether it is the base value, before each record of a batch."""
        records, _ = _parse_lines(os.pread(fd, self._offset, 0), self.log_path)
        before: dict[tuple[str, str], OverrideRecord] = {}
        restored: list[dict[str, Any]] = []
        for record in records:
            key = (record.segment_id, record.field)
            if record.batch_id == batch_id:
                prior = before.get(key)
                restored.append(
                    {
                        "segment_id": record.segment_id,
                        "field": record.field,
                        "value": record.previous_value,
                        "restores_base": prior is None or prior.restores_base,
                    }
                )
            elif not restored:
                before[key] = record
        return restored

    def _load_index(self, fd: int) -> None:
        """Adopt the index when it describes a prefix of the log; otherwise fold from 0."""
        try:
            payload = json.loads(self.index_path.read_text(encoding="utf-8"))
            size, digest = int(payload["log_size"]), str(payload["log_sha256"])
            fresh = (payload["format"], payload["session_id"], payload["columns"]) == (
                INDEX_FORMAT,
                self.session_id,
                list(RECORD_COLUMNS),
            )
            current = [OverrideRecord(*row) for row in payload["current"]] if fresh else []
            open_batches = {str(u): [str(b) for b in s] for u, s in payload["open_batches"].items()}
            seq = int(payload["seq"])
        except FileNotFoundError:
            logger.info("no override index at %s; building it from the log", self.index_path)
            return
        except (ValueError, KeyError, TypeError, AttributeError) as error:
            logger.warning(
                "override index %s is corrupt (%s); rebuilding it from the log",
                self.index_path,
                error,
            )
            return
        prefix = _hash_prefix(fd, size)
        if not fresh or prefix is None or prefix.hexdigest() != digest:
            logger.info("override index %s does not match the log; rebuilding it", self.index_path)
            return
        for record in current:
            self._current.setdefault(record.segment_id, {})[record.field] = record
            self._track_structure(record)
        self._open_batches = open_batches
        self._seq, self._offset, self._hash = seq, size, prefix
        self._indexed = (size, digest)

    def _write_index_if_behind(self) -> None:
        state = (self._offset, self._hash.hexdigest())
        if state == self._indexed:
            return
        payload = {
            "format": INDEX_FORMAT,
            "session_id": self.session_id,
            "seq": self._seq,
            "log_size": state[0],
            "log_sha256": state[1],
            "columns": RECORD_COLUMNS,
            "current": [[getattr(r, name) for name in RECORD_COLUMNS] for r in self._records()],
            "open_batches": self._open_batches,
        }
        temporary = self.index_path.with_name(f".{INDEX_NAME}.{os.getpid()}.tmp")
        temporary.write_text(json.dumps(payload, ensure_ascii=False), encoding="utf-8")
        temporary.replace(self.index_path)
        self._indexed = state


def _parse_lines(data: bytes, path: Path) -> tuple[list[OverrideRecord], int]:
    """Parse the complete lines of ``data``; return the records and the bytes they span.

    Parsing stops at the first incomplete line, or at an unparsable last complete
    line (both are a torn append). An unparsable line followed by others is an error.
    """
    try:
        lines, used = parse_lines(data, source=f"override log {path}", corrupt="raise")
        return [OverrideRecord.from_dict(line) for line in lines], used
    except (ValueError, TypeError) as error:
        msg = (
            f"{error}"
            if isinstance(error, JsonlCorruptError)
            else (
                f"override log {path} holds a line that is no correction ({error}); it was edited by hand: "
                "move the bad line out of the file after checking it"
            )
        )
        raise OverrideError(msg) from error


def _hash_prefix(fd: int, size: int) -> Any:
    """SHA-256 of the first ``size`` bytes of the file, or None when it is shorter."""
    digest = hashlib.sha256()
    offset = 0
    while offset < size:
        block = os.pread(fd, min(_READ_BLOCK, size - offset), offset)
        if not block:
            return None
        digest.update(block)
        offset += len(block)
    return digest


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")
