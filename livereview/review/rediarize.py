"""Re-diarize a selection of a completed session: new speakers for just those segments.

The span is diarized again as a whole; a new speaker takes the name of the operator's
speaker corrections it covers (anchors), else of the earlier speaker it shares the most
speech with, so a speaker mapping carries over. Commits through
:func:`livereview.review.reruns.run_rerun`.

Usage
-----
>>> session.rediarize(time=(60, 120), num_speakers=3, user="ana")                   # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from livereview.core.options import DiarizeOptions
from livereview.core.roles import EDITOR
from livereview.core.selection import parse_pair, select_segments
from livereview.core.turns import ChunkSpeakers
from livereview.review.reruns import RerunOutcome, run_rerun, selected_copies, selection_parameters
from livereview.review.state import SessionState
from livereview.stages.audio import load_clip
from livereview.stages.diarize import Diarizer, assign_speakers, carry_speaker_map, name_speakers, recluster
from livereview.store.rerun_log import REDIARIZE, Rerun


def rediarize(
    session: SessionState,
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
    parameters = selection_parameters(selection, segments, chunks, time) | {
        "span": [round(start, 3), round(end, 3)],
        "num_speakers": num_speakers,
    }

    def compute(rerun_id: str) -> RerunOutcome:
        with tqdm(total=3, unit="step", desc=f"{rerun_id} rediarize", disable=not progress) as bar:
            diarizer = Diarizer(session.options.diarize)
            audio = load_clip(session.audio_path, start, end)
            turns = diarizer.find_turns(audio, start, uri=f"{session.session_id}-{rerun_id}", num_speakers=num_speakers)
            bar.update()
            embeddings = diarizer.embed_turns(audio, start, turns)
            turns = _cluster_turns(turns, embeddings, session.options.diarize, num_speakers)
            bar.update()
            previous = [
                turn
                for turn in session.diarization(corrected=False).itertuples(index=False)
                if start <= _middle(turn) < end
            ]
            anchors = _speaker_anchors(session, start, end)
            names, inherited = name_speakers(turns, [tuple(turn) for turn in previous], anchors, session.known_speakers)
            targets = selected_copies(session, ids)
            assign_speakers(targets, [(a, b, names[label]) for a, b, label in turns], diarizer.model_id)
            local = [(a, b, f"{rerun_id}/{label}") for a, b, label in turns]
            speakers = _replace_turns(session, start, end, local, embeddings, [names[t[2]] for t in turns])
            bar.update()
        anchored = {speaker for *_, speaker in anchors}
        mapping = carry_speaker_map(session.speaker_map, names, inherited, anchored)
        details = {"turns": len(turns), "speakers": {names[label]: inherited.get(label) for label in names}}
        return RerunOutcome(targets, diarizer.model_id, None, parameters | details, speakers, mapping)

    return run_rerun(session, REDIARIZE, ids, user=user, role=role, parameters=parameters, compute=compute)


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


def _speaker_anchors(session: SessionState, start: float, end: float) -> list[tuple[float, float, str]]:
    """Spans inside ``[start, end)`` whose speaker an operator corrected, with that speaker."""
    corrected = session.corrected_values()
    return [
        (s.start, s.end, corrected[s.segment_id]["speaker_id"])
        for s in session.segment_list()
        if "speaker_id" in corrected.get(s.segment_id, {}) and start <= (s.start + s.end) / 2 < end
    ]


def _replace_turns(
    session: SessionState,
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


def _middle(turn: Any) -> float:
    return (turn[0] + turn[1]) / 2
