"""Partial reruns: reclassify or re-diarize a selection of a completed session.

Only the selected segments change. A rerun computes its results in memory, then
commits them all at once (see :mod:`livereview.rerun_log`), emits them as live
events (``stage="rerun"``: started, the new rows in batches, completed) and adds
a line to ``reruns/history.jsonl`` with every selected segment's values before
and after. Operator corrections always win in the merged view; reruns learn
from them:

- reclassification refits the classifier with the session's IC/OOC and character
  corrections as teaching examples (classifiers with ``with_corrections``);
- re-diarization names a new speaker after the operator's speaker corrections it
  covers (anchors), else after the earlier speaker it shares the most speech with,
  so a speaker mapping carries over.

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
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from livereview import events
from livereview.audio import load_clip
from livereview.classify import CLASSIFICATION_COLUMNS, resolve_classifier
from livereview.diarize import (
    ChunkSpeakers,
    DiarizeOptions,
    Diarizer,
    assign_speakers,
    carry_speaker_map,
    name_speakers,
    recluster,
)
from livereview.overrides import EDITOR, check_writer
from livereview.pipeline import classification_frame, classify_segments
from livereview.rerun_log import RECLASSIFY, REDIARIZE, Rerun, RerunError, RerunLog
from livereview.segments import Segment
from livereview.selection import parse_pair, select_segments

if TYPE_CHECKING:
    from livereview.session import Session

logger = logging.getLogger(__name__)

#: The base fields each kind of rerun may change.
RERUN_FIELDS = {
    RECLASSIFY: ("ic_ooc", "ic_ooc_confidence", "segment_type", "character_tag", "classifier", "status"),
    REDIARIZE: ("speaker_id", "speaker_confidence", "diarization_model"),
}
RERUN_STATUS = "rerun"


@dataclass
class _Outcome:
    """What a rerun computed, before it is committed."""

    segments: list[Segment]
    model: str
    variant: str | None = None
    parameters: dict[str, Any] = dataclasses.field(default_factory=dict)
    speakers: list[ChunkSpeakers] | None = None
    speaker_map: dict[str, str] | None = None


def reclassify(
    session: Session,
    selection: Any = None,
    *,
    user: str,
    segments: tuple[str, str] | str | None = None,
    chunks: Any = None,
    time: tuple[float, float] | str | None = None,
    classifier: Any = None,
    variant: str | None = None,
    use_corrections: bool = True,
    role: str = EDITOR,
    batch_size: int = 256,
    progress: bool = True,
) -> Rerun:
    """Classify the selected segments again (IC/OOC, segment type, character tag).

    Parameters
    ----------
    session : Session
        A completed session.
    selection, segments, chunks, time
        Exactly one way of choosing segments (see :func:`livereview.selection.select_segments`).
    user : str
        Who reruns (kept in the history).
    classifier : str or callable, optional
        The session's classifier by default; any value :func:`~livereview.classify.resolve_classifier`
        accepts (``"keywords"``, ``"llm:<url>:<model>[:<variant>]"``, a callable).
    variant : str, optional
        Prompt variant of an LLM classifier.
    use_corrections : bool
        Teach the classifier the session's IC/OOC and character corrections first.
    batch_size : int
        Segments per classifier call (and per progress step).
    progress : bool
        Show a progress bar.

    Raises
    ------
    SelectionError, ValueError
        A bad selection, classifier or variant; nothing is changed.
    RerunError
        The session is not complete, or another rerun holds its lock.
    """
    ids = select_segments(session.segment_spans(), selection, segments=segments, chunks=chunks, time=time)
    model, corrections = _taught_classifier(session, classifier, variant, use_corrections)
    parameters = _selection_parameters(selection, segments, chunks, time) | {
        "classifier": _name(model),
        "corrections": corrections,
        "use_corrections": use_corrections,
    }

    def compute(rerun_id: str) -> _Outcome:
        targets = _classified_copies(session, ids, model, batch_size, progress, f"{rerun_id} reclassify")
        return _Outcome(targets, _name(model), getattr(model, "prompt_variant", None), parameters)

    return _rerun(session, RECLASSIFY, ids, user=user, role=role, parameters=parameters, compute=compute)


def preview_reclassify(
    session: Session,
    selection: Any = None,
    *,
    segments: tuple[str, str] | str | None = None,
    chunks: Any = None,
    time: tuple[float, float] | str | None = None,
    classifier: Any = None,
    variant: str | None = None,
    use_corrections: bool = True,
    batch_size: int = 256,
    progress: bool = True,
) -> pd.DataFrame:
    """What :func:`reclassify` would give, without changing anything: for experiments.

    Takes the same selection and classifier arguments (the whole session when no
    selection is given) and returns one row per segment with the
    :data:`~livereview.classify.CLASSIFICATION_COLUMNS`, indexed by segment id.
    """
    spans = session.segment_spans()
    if all(value is None for value in (selection, segments, chunks, time)):
        selection = spans.index.tolist()
    ids = select_segments(spans, selection, segments=segments, chunks=chunks, time=time)
    model, _ = _taught_classifier(session, classifier, variant, use_corrections)
    targets = _classified_copies(session, ids, model, batch_size, progress, f"preview {_name(model)}")
    return pd.DataFrame(
        {name: [getattr(s, name) for s in targets] for name in CLASSIFICATION_COLUMNS},
        index=pd.Index([s.segment_id for s in targets]),
    )


def rediarize(
    session: Session,
    selection: Any = None,
    *,
    user: str,
    segments: tuple[str, str] | str | None = None,
    chunks: Any = None,
    time: tuple[float, float] | str | None = None,
    num_speakers: int | None = None,
    role: str = EDITOR,
    progress: bool = True,
) -> Rerun:
    """Diarize the span of the selected segments again and give them new speakers.

    The span (the ``time`` range, else first start to last end of the selection) is
    diarized as a whole; its new speakers are named after the operator's speaker
    corrections they cover, else after the earlier speakers they share the most
    speech with; a new name inherits that earlier speaker's player in the speaker
    mapping. Only the selected segments change; the span's stored speaker turns are
    replaced.

    Parameters
    ----------
    num_speakers : int, optional
        Exact number of speakers in the span; the session's limit bounds it otherwise.

    See :func:`reclassify` for the other parameters and the errors.
    """
    if num_speakers is not None and num_speakers < 1:
        msg = f"num_speakers must be at least 1; got {num_speakers}"
        raise ValueError(msg)
    frame = session.segment_spans()
    ids = select_segments(frame, selection, segments=segments, chunks=chunks, time=time)
    chosen = frame.loc[ids]
    start, end = (
        parse_pair(time, "time", float)
        if time is not None
        else (float(chosen["start"].min()), float(chosen["end"].max()))
    )
    parameters = _selection_parameters(selection, segments, chunks, time) | {
        "span": [round(start, 3), round(end, 3)],
        "num_speakers": num_speakers,
    }

    def compute(rerun_id: str) -> _Outcome:
        with tqdm(total=3, unit="step", desc=f"{rerun_id} rediarize", disable=not progress) as bar:
            diarizer = Diarizer(session.options.diarize)
            audio = load_clip(session.audio_path, start, end)
            turns = diarizer.find_turns(audio, start, uri=f"{session.session_id}-{rerun_id}", num_speakers=num_speakers)
            bar.update()
            embeddings = diarizer.embed_turns(audio, start, turns)
            turns = _cluster_turns(turns, embeddings, session.options.diarize, num_speakers)
            bar.update()
            previous = [turn for turn in session.diarization().itertuples(index=False) if start <= _middle(turn) < end]
            anchors = _speaker_anchors(session, start, end)
            names, inherited = name_speakers(turns, [tuple(turn) for turn in previous], anchors, session.known_speakers)
            targets = _copies(session, ids)
            assign_speakers(targets, [(a, b, names[label]) for a, b, label in turns], diarizer.model_id)
            local = [(a, b, f"{rerun_id}/{label}") for a, b, label in turns]
            speakers = _replace_turns(session, start, end, local, embeddings, [names[t[2]] for t in turns])
            bar.update()
        anchored = {speaker for *_, speaker in anchors}
        mapping = carry_speaker_map(session.speaker_map, names, inherited, anchored)
        details = {"turns": len(turns), "speakers": {names[label]: inherited.get(label) for label in names}}
        return _Outcome(targets, diarizer.model_id, None, parameters | details, speakers, mapping)

    return _rerun(session, REDIARIZE, ids, user=user, role=role, parameters=parameters, compute=compute)


def correction_examples(session: Session) -> pd.DataFrame:
    """The session's IC/OOC and character-tag corrections as classifier teaching examples.

    One row per corrected segment with the columns
    :meth:`~livereview.classify.EmbeddingClassifier.with_corrections` takes (a label the
    operator did not correct is None).
    """
    corrected = session.corrected_values()
    taught = [s for s in session.segment_list() if {"ic_ooc", "character_tag"} & set(corrected.get(s.segment_id, ()))]
    columns = ["text", "speaker_id", "player", "is_game_master", "ic_ooc", "character_tag"]
    if not taught:
        return pd.DataFrame(columns=columns)
    frame = classification_frame(session, taught)
    frame = frame[~frame["context"].astype(bool)].copy()
    frame["ic_ooc"] = [corrected[sid].get("ic_ooc") for sid in frame.index]
    frame["character_tag"] = [corrected[sid].get("character_tag") for sid in frame.index]
    return frame[columns]


def disagreements(session: Session) -> pd.DataFrame:
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


def finish_interrupted(session: Session, log: RerunLog) -> Rerun | None:
    """Complete a rerun whose commit was interrupted (call with the rerun lock held)."""
    commit = log.pending()
    if commit is None:
        return None
    _apply(session, commit)
    log.finish(commit["record"])
    logger.warning("finished rerun %s, interrupted while it was committed", commit["record"]["rerun_id"])
    return Rerun(commit["record"])


# -- the common part ------------------------------------------------------------------------------


def _rerun(
    session: Session,
    kind: str,
    ids: list[str],
    *,
    user: str,
    role: str,
    parameters: dict[str, Any],
    compute: Callable[[str], _Outcome],
) -> Rerun:
    check_writer(user, role, f"{kind} segments")
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


def _apply(session: Session, commit: dict[str, Any]) -> None:
    speakers = commit.get("speakers")
    session.replace_results(
        [Segment.from_dict(data) for data in commit["segments"]],
        speakers=None if speakers is None else [ChunkSpeakers.from_record(record) for record in speakers],
        speaker_map=commit.get("speaker_map"),
    )


def _check_ready(session: Session) -> None:
    if session.running:
        msg = f"session {session.session_id!r} is running; rerun parts of it once the run completes (session.wait())"
        raise RerunError(msg)
    if session.status != "complete":
        msg = (
            f"session {session.session_id!r} is {session.status}: reruns change a completed session; "
            "finish the run first (running it again resumes it)"
        )
        raise RerunError(msg)


def _taught_classifier(
    session: Session, classifier: Any, variant: str | None, use_corrections: bool
) -> tuple[Any, int]:
    """The classifier to rerun with, refitted on the session's corrections when asked; and their count."""
    model = _classifier(session, classifier, variant)
    if not use_corrections or not hasattr(model, "with_corrections"):
        return model, 0
    examples = correction_examples(session)
    return (model.with_corrections(examples, session.party) if len(examples) else model), len(examples)


def _classified_copies(
    session: Session, ids: list[str], model: Any, batch_size: int, progress: bool, desc: str
) -> list[Segment]:
    """Copies of the selected segments, classified by ``model`` run by run of neighbours."""
    targets = _copies(session, ids)
    with tqdm(total=len(targets), unit="seg", desc=desc, disable=not progress) as bar:
        for run in _contiguous(session, targets):
            for first in range(0, len(run), batch_size):
                batch = run[first : first + batch_size]
                classify_segments(session, model, batch)
                bar.update(len(batch))
    return targets


def _classifier(session: Session, classifier: Any, variant: str | None) -> Any:
    model = resolve_classifier(session.options.classifier if classifier is None else classifier)
    if variant is None:
        return model
    if not dataclasses.is_dataclass(model) or not hasattr(model, "prompt_variant"):
        msg = (
            f"classifier {_name(model)} has no prompt variants; variants belong to LLM classifiers "
            "(classifier='llm:<base_url>:<model>')"
        )
        raise ValueError(msg)
    return dataclasses.replace(model, prompt_variant=variant)


def _name(model: Any) -> str:
    return str(getattr(model, "name", getattr(model, "__name__", type(model).__name__)))


def _copies(session: Session, ids: list[str]) -> list[Segment]:
    """Copies of the selected segments, in start order, for a rerun to fill in."""
    wanted = set(ids)
    return [dataclasses.replace(s) for s in session.segment_list() if s.segment_id in wanted]


def _contiguous(session: Session, targets: list[Segment]) -> list[list[Segment]]:
    """``targets`` split into runs of segments that follow each other in the session."""
    position = {s.segment_id: index for index, s in enumerate(session.segment_list())}
    runs: list[list[Segment]] = []
    for segment in targets:
        if runs and position[segment.segment_id] == position[runs[-1][-1].segment_id] + 1:
            runs[-1].append(segment)
        else:
            runs.append([segment])
    return runs


def _cluster_turns(
    turns: list[tuple[float, float, str]], embeddings: np.ndarray, options: DiarizeOptions, num_speakers: int | None
) -> list[tuple[float, float, str]]:
    """Turns relabelled by clustering their own embeddings, as the session's global pass does.

    The pipeline's clustering of a short span can merge two close voices that the
    session's per-turn clustering tells apart; with ``num_speakers`` it is exact,
    otherwise the session's speaker limit bounds it.
    """
    span = ChunkSpeakers(-1, turns, embeddings, [label for *_, label in turns])
    bounded = dataclasses.replace(
        options, num_speakers=num_speakers, min_speakers=None, max_speakers=num_speakers or options.speaker_limit
    )
    labels = recluster([span], bounded)[-1]
    return [(first, last, label) for (first, last, _), label in zip(turns, labels, strict=True)]


def _speaker_anchors(session: Session, start: float, end: float) -> list[tuple[float, float, str]]:
    """Spans inside ``[start, end)`` whose speaker an operator corrected, with that speaker."""
    corrected = session.corrected_values()
    return [
        (s.start, s.end, corrected[s.segment_id]["speaker_id"])
        for s in session.segment_list()
        if "speaker_id" in corrected.get(s.segment_id, {}) and start <= (s.start + s.end) / 2 < end
    ]


def _replace_turns(
    session: Session,
    start: float,
    end: float,
    turns: list[tuple[float, float, str]],
    embeddings: np.ndarray,
    speakers: list[str],
) -> list[ChunkSpeakers]:
    """The chunks' diarization with the turns of ``[start, end)`` replaced; changed chunks only."""
    stored = {chunk.chunk_id: chunk for chunk in session.speaker_chunks()}
    spans = session.chunks[["chunk_id", "start", "end"]].to_numpy()
    changed: dict[int, ChunkSpeakers] = {}
    for chunk in stored.values():
        keep = [i for i, turn in enumerate(chunk.turns) if not start <= _middle(turn) < end]
        if len(keep) != len(chunk.turns):
            changed[chunk.chunk_id] = ChunkSpeakers(
                chunk.chunk_id,
                [chunk.turns[i] for i in keep],
                chunk.embeddings[keep],
                [chunk.speakers[i] for i in keep],
            )
    for turn, embedding, speaker in zip(turns, embeddings, speakers, strict=True):
        middle = _middle(turn)
        owner = int(spans[np.argmin([max(a - middle, middle - b, 0.0) for _, a, b in spans]), 0])
        chunk = changed.get(owner, stored[owner])
        changed[owner] = ChunkSpeakers(
            owner, [*chunk.turns, turn], np.vstack([chunk.embeddings, embedding[None]]), [*chunk.speakers, speaker]
        )
    for chunk_id, chunk in changed.items():
        order = sorted(range(len(chunk.turns)), key=lambda i: chunk.turns[i][:2])
        changed[chunk_id] = ChunkSpeakers(
            chunk_id, [chunk.turns[i] for i in order], chunk.embeddings[order], [chunk.speakers[i] for i in order]
        )
    return list(changed.values())


def _selection_parameters(selection: Any, segments: Any, chunks: Any, time: Any) -> dict[str, Any]:
    if segments is not None:
        return {"selection": "segments", "range": list(segments.split(":") if isinstance(segments, str) else segments)}
    if chunks is not None:
        return {"selection": "chunks", "chunks": sorted(int(c) for c in chunks)}
    if time is not None:
        return {"selection": "time", "time": list(parse_pair(time, "time", float))}
    return {"selection": "mask" if isinstance(selection, pd.Series) else "ids"}


def _middle(turn: Any) -> float:
    return (turn[0] + turn[1]) / 2


def _values(segment: Segment, names: tuple[str, ...]) -> dict[str, Any]:
    return {name: getattr(segment, name) for name in names}


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")
