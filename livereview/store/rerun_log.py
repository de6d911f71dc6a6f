"""The rerun history of a session, and the journal that makes each rerun all or nothing.

Layout of ``output/<session_id>/reruns/``::

    history.jsonl   one line per completed rerun (see :class:`Rerun`)
    pending.json    the rerun being committed: its history line and its new results
    (the session's writer lock, livereview.store.writer, is held while a rerun computes and commits)

A rerun computes everything in memory, then writes ``pending.json`` (atomically),
replaces the session files, appends its history line and removes ``pending.json``.
Interrupted before ``pending.json`` exists, the session is as it was; interrupted
after, opening the session finishes the commit (:meth:`RerunLog.pending`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from livereview.core.jsonl import append_jsonl, read_json, read_jsonl, write_json_atomic
from livereview.store.writer import SessionBusyError, WriterLock

RECLASSIFY, REDIARIZE = "reclassify", "rediarize"
RERUN_KINDS = (RECLASSIFY, REDIARIZE)
HISTORY_COLUMNS = (
    "rerun_id",
    "kind",
    "user",
    "model",
    "variant",
    "started",
    "ended",
    "seconds",
    "segments",
    "changed",
    "parameters",
)
DIFF_COLUMNS = ("segment_id", "field", "before", "after", "changed")


class RerunError(RuntimeError):
    """A rerun cannot start now (the session is running or incomplete, or another rerun holds it)."""


class RerunBusyError(RerunError):
    """Another rerun of the session holds its lock."""


@dataclass(frozen=True)
class Rerun:
    """One completed rerun: its history record, with the changes as DataFrames.

    ``record`` holds ``rerun_id``, ``kind`` (``"reclassify"`` or ``"rediarize"``),
    ``parameters``, ``model``, ``variant``, ``user``, ``started``, ``ended``,
    ``segment_ids`` and ``changes`` (segment id -> ``before``/``after`` field values).
    """

    record: dict[str, Any]

    @property
    def rerun_id(self) -> str:
        return self.record["rerun_id"]

    @property
    def kind(self) -> str:
        return self.record["kind"]

    @property
    def segment_ids(self) -> list[str]:
        return list(self.record["segment_ids"])

    @property
    def changed_ids(self) -> list[str]:
        """Selected segments with at least one field changed."""
        changes = self.record["changes"]
        return [sid for sid in self.segment_ids if changes[sid]["before"] != changes[sid]["after"]]

    def diff(self, *, changed_only: bool = True) -> pd.DataFrame:
        """One row per segment and field: ``before``, ``after`` and whether it ``changed``."""
        rows = [
            (sid, name, change["before"].get(name), value, change["before"].get(name) != value)
            for sid, change in self.record["changes"].items()
            for name, value in change["after"].items()
        ]
        frame = pd.DataFrame(rows, columns=list(DIFF_COLUMNS))
        return frame[frame["changed"]].reset_index(drop=True) if changed_only else frame

    def summary(self) -> dict[str, Any]:
        """The history row of this rerun (see :data:`HISTORY_COLUMNS`)."""
        record = self.record
        started, ended = pd.Timestamp(record["started"]), pd.Timestamp(record["ended"])
        return {
            "rerun_id": record["rerun_id"],
            "kind": record["kind"],
            "user": record["user"],
            "model": record["model"],
            "variant": record.get("variant"),
            "started": started,
            "ended": ended,
            "seconds": round((ended - started).total_seconds(), 3),
            "segments": len(record["segment_ids"]),
            "changed": len(self.changed_ids),
            "parameters": record["parameters"],
        }

    def __repr__(self) -> str:
        return (
            f"<Rerun {self.rerun_id} {self.kind} by {self.record['user']}: "
            f"{len(self.changed_ids)} of {len(self.segment_ids)} segments changed>"
        )


class RerunLog:
    """Reads and writes a session's ``reruns/`` folder."""

    def __init__(self, session_directory: Path) -> None:
        self.directory = Path(session_directory) / "reruns"
        self.history_path = self.directory / "history.jsonl"
        self.pending_path = self.directory / "pending.json"

    def lock(self) -> WriterLock:
        """The session's writer lock, taken for a rerun; :class:`RerunBusyError` names who holds it otherwise."""
        self.directory.mkdir(parents=True, exist_ok=True)
        lock = WriterLock(self.directory.parent)
        try:
            lock.acquire("rerun")
        except SessionBusyError as busy:
            holder = busy.holder
            if holder.get("what") == "rerun":
                msg = (
                    f"another rerun of this session is in progress (pid {holder.get('pid')} on {holder.get('host')}, "
                    f"since {holder.get('since')}); try again when it ends"
                )
            else:
                msg = str(busy)
            raise RerunBusyError(msg) from None
        return lock

    def reruns(self) -> list[Rerun]:
        """Completed reruns, oldest first."""
        return [Rerun(record) for record in read_jsonl(self.history_path)]

    def get(self, rerun_id: str) -> Rerun:
        reruns = self.reruns()
        for rerun in reruns:
            if rerun.rerun_id == rerun_id:
                return rerun
        known = ", ".join(r.rerun_id for r in reruns) or "none yet"
        msg = f"no rerun {rerun_id!r} in this session (reruns: {known})"
        raise KeyError(msg)

    def next_id(self) -> str:
        """``r0001``, ``r0002``… (call with the lock held)."""
        return f"r{len(self.reruns()) + 1:04d}"

    def history(self) -> pd.DataFrame:
        """One row per completed rerun (see :data:`HISTORY_COLUMNS`)."""
        return pd.DataFrame([rerun.summary() for rerun in self.reruns()], columns=list(HISTORY_COLUMNS))

    def begin(self, commit: dict[str, Any]) -> None:
        """Journal a commit: from here on the rerun completes even if interrupted."""
        write_json_atomic(self.pending_path, commit)

    def pending(self) -> dict[str, Any] | None:
        """A journaled commit an interrupted process left unfinished, if any."""
        return read_json(self.pending_path)

    def finish(self, record: dict[str, Any]) -> None:
        """Add the rerun to the history (once) and clear the journal."""
        if all(rerun.rerun_id != record["rerun_id"] for rerun in self.reruns()):
            append_jsonl(self.history_path, [record], sync=True)
        self.pending_path.unlink(missing_ok=True)
