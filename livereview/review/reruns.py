"""Partial reruns: reclassify or re-diarize a selection of a completed session.

Only the selected segments change. A rerun computes its results in memory, then
commits them all at once (see :mod:`livereview.store.rerun_log`), emits them as live
events (``stage="rerun"``: started, the new rows in batches, completed) and adds
a line to ``reruns/history.jsonl`` with every selected segment's values before
and after. Operator corrections always win in the merged view; reruns learn
from them:

- reclassification refits the classifier with the session's IC/OOC and character
  corrections as teaching examples (classifiers with ``with_corrections``);
- re-diarization names a new speaker after the operator's speaker corrections it
  covers (anchors), else after the earlier speaker it shares the most speech with,
  so a speaker mapping carries over.

The commit, history line and events are this module's (:func:`run_rerun`); what a
rerun computes is :mod:`livereview.review.reclassify`'s or :mod:`livereview.review.rediarize`'s.

Usage
-----
>>> rerun = session.reclassify(segments=("c00002-s000", "c00006-s003"), user="ana")  # doctest: +SKIP
>>> rerun.diff()                                                                    # doctest: +SKIP
>>> session.rediarize(time=(60, 120), num_speakers=3, user="ana")                   # doctest: +SKIP
>>> session.rerun_history()                                                         # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pandas as pd

from livereview.core import events
from livereview.core.roles import check_writer
from livereview.core.saved import FINISHED
from livereview.core.segments import Segment
from livereview.core.selection import parse_pair
from livereview.core.turns import ChunkSpeakers
from livereview.review.state import SessionState
from livereview.store.override_rules import OverrideError
from livereview.store.rerun_log import RECLASSIFY, REDIARIZE, Rerun, RerunError, RerunLog

logger = logging.getLogger(__name__)

#: The base fields each kind of rerun may change.
RERUN_FIELDS = {
    RECLASSIFY: ("ic_ooc", "ic_ooc_confidence", "segment_type", "character_tag", "classifier", "status"),
    REDIARIZE: ("speaker_id", "speaker_confidence", "diarization_model"),
}
RERUN_STATUS = "rerun"


@dataclass
class RerunOutcome:
    """What a rerun computed, before it is committed."""

    segments: list[Segment]
    model: str
    variant: str | None = None
    parameters: dict[str, Any] = dataclasses.field(default_factory=dict)
    speakers: list[ChunkSpeakers] | None = None
    speaker_map: dict[str, str] | None = None


def disagreements(session: SessionState) -> pd.DataFrame:
    """Corrections a later rerun disagrees with: ``segment_id``, ``field``, ``override``,
    ``rerun_value``, ``rerun_id`` (the override still wins in the merged view)."""
    latest: dict[tuple[str, str], tuple[str, Any]] = {}
    for rerun in session.rerun_log.reruns():
        for sid, change in rerun.record["changes"].items():
            for name, value in change["after"].items():
                latest[(sid, name)] = (rerun.rerun_id, value)
    rows = [
        (sid, name, value, latest[(sid, name)][1], latest[(sid, name)][0])
        for sid, values in session.corrected_values().items()
        for name, value in values.items()
        if (sid, name) in latest and latest[(sid, name)][1] != value
    ]
    return pd.DataFrame(rows, columns=["segment_id", "field", "override", "rerun_value", "rerun_id"])


def finish_interrupted(session: SessionState, log: RerunLog) -> Rerun | None:
    """Complete a rerun whose commit was interrupted (call with the rerun lock held)."""
    commit = log.pending()
    if commit is None:
        return None
    _apply(session, commit)
    log.finish(commit["record"])
    logger.warning("finished rerun %s, interrupted while it was committed", commit["record"]["rerun_id"])
    return Rerun(commit["record"])


# -- the common part ------------------------------------------------------------------------------


def run_rerun(
    session: SessionState,
    kind: str,
    ids: list[str],
    *,
    user: str,
    role: str,
    parameters: dict[str, Any],
    compute: Callable[[str], RerunOutcome],
) -> Rerun:
    check_writer(user, role, f"{kind} segments", invalid=OverrideError)
    _check_ready(session)
    log, emitter = session.rerun_log, session.events
    lock = log.lock()
    try:
        finish_interrupted(session, log)
        rerun_id, started, clock = log.next_id(), _now(), time.perf_counter()
        emitter.emit(
            events.STAGE_STARTED,
            stage="rerun",
            status="running",
            message=f"{kind} of {len(ids)} segments",
            data={"rerun_id": rerun_id, "kind": kind, "segments": len(ids), "parameters": parameters},
        )
        try:
            outcome = compute(rerun_id)
        except BaseException as error:
            emitter.emit(
                events.ERROR,
                stage="rerun",
                status="failed",
                message=f"{kind} {rerun_id} failed, nothing changed: {type(error).__name__}: {error}",
                data={"rerun_id": rerun_id, "kind": kind},
            )
            raise
        selected = set(ids)
        before = {s.segment_id: s for s in session.segment_list() if s.segment_id in selected}
        record = {
            "rerun_id": rerun_id,
            "kind": kind,
            "parameters": outcome.parameters,
            "model": outcome.model,
            "variant": outcome.variant,
            "user": user,
            "started": started,
            "ended": _now(),
            "segment_ids": ids,
            "changes": {
                s.segment_id: {
                    "before": _values(before[s.segment_id], RERUN_FIELDS[kind]),
                    "after": _values(s, RERUN_FIELDS[kind]),
                }
                for s in outcome.segments
            },
        }
        commit = {
            "record": record,
            "segments": [s.to_dict() for s in outcome.segments],
            "speakers": None if outcome.speakers is None else [c.to_record() for c in outcome.speakers],
            "speaker_map": outcome.speaker_map,
        }
        log.begin(commit)
        _apply(session, commit)
        log.finish(record)
    finally:
        lock.release()
    rerun = Rerun(record)
    emitter.emit_segments(
        events.UPDATE,
        outcome.segments,
        stage="rerun",
        status=RERUN_STATUS,
        model=outcome.model,
        data={"rerun_id": rerun_id, "kind": kind},
    )
    emitter.emit(
        events.STAGE_COMPLETED,
        stage="rerun",
        status="complete",
        elapsed=time.perf_counter() - clock,
        message=f"{kind} {rerun_id}: {len(rerun.changed_ids)} of {len(ids)} segments changed",
        data={"rerun_id": rerun_id, "kind": kind, "segments": len(ids), "changed": len(rerun.changed_ids)},
    )
    return rerun


def _apply(session: SessionState, commit: dict[str, Any]) -> None:
    speakers = commit.get("speakers")
    session._store.replace_results(
        [Segment.from_dict(data) for data in commit["segments"]],
        speakers=None if speakers is None else [ChunkSpeakers.from_record(record) for record in speakers],
        speaker_map=commit.get("speaker_map"),
    )


def _check_ready(session: SessionState) -> None:
    if session.running:
        msg = f"session {session.session_id!r} is running; rerun parts of it once the run completes (session.wait())"
        raise RerunError(msg)
    if session.status not in FINISHED:
        msg = (
            f"session {session.session_id!r} is {session.status}: reruns change a completed session; "
            "finish the run first (running it again resumes it)"
        )
        raise RerunError(msg)


def selected_copies(session: SessionState, ids: list[str]) -> list[Segment]:
    """Copies of the selected segments, in start order, for a rerun to fill in."""
    wanted = set(ids)
    return [dataclasses.replace(s) for s in session.segment_list() if s.segment_id in wanted]


def selection_parameters(selection: Any, segments: Any, chunks: Any, time: Any) -> dict[str, Any]:
    if segments is not None:
        return {"selection": "segments", "range": list(segments.split(":") if isinstance(segments, str) else segments)}
    if chunks is not None:
        return {"selection": "chunks", "chunks": sorted(int(c) for c in chunks)}
    if time is not None:
        return {"selection": "time", "time": list(parse_pair(time, "time", float))}
    return {"selection": "mask" if isinstance(selection, pd.Series) else "ids"}


def _values(segment: Segment, names: tuple[str, ...]) -> dict[str, Any]:
    return {name: getattr(segment, name) for name in names}


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")
