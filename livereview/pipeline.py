"""The streaming pipeline: chunk, transcribe, diarize, classify, and tell as it goes.

For each chunk the stages run in order and each one emits live events, so rows
appear seconds after the start and fill in (speaker, IC/OOC) chunk by chunk. A
final global pass reclusters all speakers and emits the segments it relabels.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pandas as pd
from tqdm.auto import tqdm

from livereview import events
from livereview.audio import iter_audio, probe
from livereview.chunks import Chunk, chunk_audio
from livereview.classify import CLASSIFICATION_COLUMNS, NEEDS_ATTENTION_THRESHOLD, resolve_classifier
from livereview.diarize import ChunkSpeakers, Diarizer, assign_speakers, recluster
from livereview.segments import CLASSIFIED, DIARIZED, NEEDS_ATTENTION, TRANSCRIBED, Segment
from livereview.transcribe import Transcriber

if TYPE_CHECKING:
    from collections.abc import Iterator

    from livereview.session import RunOptions, Session

logger = logging.getLogger(__name__)

#: Earlier segments given to the classifier as context for a chunk.
CONTEXT_SEGMENTS = 3


@dataclass
class StageClock:
    """Seconds spent per stage, for real-time factors."""

    seconds: dict[str, float] = field(default_factory=lambda: defaultdict(float))

    @contextmanager
    def measure(self, stage: str) -> Iterator[dict[str, float]]:
        started = time.perf_counter()
        timing = {"elapsed": 0.0}
        try:
            yield timing
        finally:
            timing["elapsed"] = time.perf_counter() - started
            self.seconds[stage] += timing["elapsed"]

    def real_time_factors(self, audio_seconds: float) -> dict[str, float]:
        """Processing seconds per audio second, per stage and in total."""
        if audio_seconds <= 0:
            return {}
        factors = {stage: seconds / audio_seconds for stage, seconds in self.seconds.items()}
        factors["total"] = sum(self.seconds.values()) / audio_seconds
        return factors


def classification_frame(session: Session, segments: list[Segment]) -> pd.DataFrame:
    """The rows a classifier sees: ``segments`` after up to three earlier ones as context.

    Operator corrections already made (text, speaker) are applied, and the
    speaker mapping turns diarized speakers into players.
    """
    targets = {s.segment_id for s in segments}
    first = min((s.start for s in segments), default=0.0)
    earlier = [s for s in session.segment_list() if s.start < first and s.segment_id not in targets]
    rows = [*earlier[-CONTEXT_SEGMENTS:], *segments]
    corrected = session.corrected_values()
    frame = pd.DataFrame(
        {
            "segment_id": [s.segment_id for s in rows],
            "start": [s.start for s in rows],
            "end": [s.end for s in rows],
            "text": [corrected.get(s.segment_id, {}).get("text", s.text) for s in rows],
            "speaker_id": [corrected.get(s.segment_id, {}).get("speaker_id", s.speaker_id) for s in rows],
            "context": [s.segment_id not in targets for s in rows],
        },
        index=[s.segment_id for s in rows],
    )
    players = session.speaker_map
    frame["player"] = frame["speaker_id"].map(lambda speaker: players.get(speaker, speaker))
    party = session.party
    frame["is_game_master"] = (
        frame["player"].map(lambda p: party is not None and p == party.game_master) if party else False
    )
    return frame


def classify_segments(session: Session, classifier: Any, segments: list[Segment]) -> None:
    """Fill the IC/OOC columns of ``segments`` in place and set their status."""
    if not segments:
        return
    frame = classification_frame(session, segments)
    result = classifier(frame, session.party)
    missing = set(CLASSIFICATION_COLUMNS) - set(result.columns)
    if missing:
        msg = (
            f"classifier {classifier!r} returned no columns {sorted(missing)}; it must return {CLASSIFICATION_COLUMNS}"
        )
        raise ValueError(msg)
    for segment in segments:
        row = result.loc[segment.segment_id]
        segment.ic_ooc = row["ic_ooc"]
        segment.ic_ooc_confidence = float(row["ic_ooc_confidence"])
        segment.segment_type = row["segment_type"]
        segment.character_tag = row["character_tag"]
        segment.classifier = row["classifier"]
        low = segment.ic_ooc_confidence < NEEDS_ATTENTION_THRESHOLD
        segment.status = NEEDS_ATTENTION if low else CLASSIFIED


@dataclass
class Models:
    """The three stages' models, loaded once per run."""

    transcriber: Transcriber
    diarizer: Diarizer
    classifier: Any

    @classmethod
    def load(cls, options: RunOptions) -> Models:
        return cls(Transcriber(options.transcribe), Diarizer(options.diarize), resolve_classifier(options.classifier))

    def identifiers(self) -> dict[str, str]:
        return {
            "asr": self.transcriber.model_id,
            "diarization": self.diarizer.model_id,
            "classifier": getattr(self.classifier, "name", getattr(self.classifier, "__name__", repr(self.classifier))),
        }


def run_pipeline(session: Session, *, progress: bool = True, models: Models | None = None) -> None:
    """Process the session's recording from its last completed chunk to the end.

    Parameters
    ----------
    session : Session
        A created (or partly processed) session; results go into it and its directory.
    progress : bool
        Show a progress bar over the recording's seconds, with ETA.
    models : Models, optional
        Loaded models to reuse (benchmarks); loaded from the session's config otherwise.
    """
    emitter = session.events
    info = probe(session.audio_path)
    clock = StageClock()
    with clock.measure("load"):
        models = models or Models.load(session.options)
    saved = session.resume_point()
    models.diarizer.restore(saved.speakers)
    speakers: list[ChunkSpeakers] = list(saved.speakers)
    start = saved.chunks[-1]["end"] if saved.chunks else 0.0
    first_chunk_id = saved.chunks[-1]["chunk_id"] + 1 if saved.chunks else 0
    is_done = bool(saved.chunks) and saved.chunks[-1].get("final", False)
    session.mark("running", models=models.identifiers())
    emitter.emit(
        events.STAGE_STARTED,
        stage="run",
        position=start,
        status="running",
        data={"duration": info.duration, "resumed_from_chunk": first_chunk_id, "models": models.identifiers()},
    )
    bar = tqdm(
        total=round(info.duration, 1), initial=round(start, 1), unit="s", desc=session.session_id, disable=not progress
    )
    try:
        chunks = (
            ()
            if is_done
            else chunk_audio(
                iter_audio(session.audio_path), session.options.chunk, first_chunk_id=first_chunk_id, start=start
            )
        )
        for chunk in chunks:
            speakers.append(_process_chunk(session, models, clock, chunk))
            bar.n = round(chunk.end, 1)  # set, not added: sums of floats would show as 300.20000000000005
            bar.set_postfix(chunks=chunk.chunk_id + 1, segments=len(session.segment_list()))
        with clock.measure("global"):
            _global_pass(session, models, speakers)
    except Exception as error:
        emitter.emit(events.ERROR, stage="run", status="failed", message=f"{type(error).__name__}: {error}")
        session.mark("failed", error=f"{type(error).__name__}: {error}")
        raise
    finally:
        bar.close()
        del clock.seconds["load"]
        session.record_metrics(clock, info.duration - start)
    factors = clock.real_time_factors(info.duration - start)
    session.mark("complete")
    emitter.emit(
        events.SUMMARY,
        stage="run",
        status="complete",
        position=info.duration,
        message=f"{len(session.segment_list())} segments, real-time factor {factors.get('total', 0):.3f}",
        data={"segments": len(session.segment_list()), "real_time_factors": factors},
    )


def _process_chunk(session: Session, models: Models, clock: StageClock, chunk: Chunk) -> ChunkSpeakers:
    emitter, chunk_id, position = session.events, chunk.chunk_id, chunk.end
    timings: dict[str, float] = {}

    emitter.emit(events.STAGE_STARTED, stage="transcribe", chunk_id=chunk_id, position=chunk.start)
    with clock.measure("transcribe") as timing:
        segments = models.transcriber.transcribe(chunk, session.session_id)
    timings["transcribe"] = timing["elapsed"]
    session.add_segments(segments)
    session.store.save_transcription(chunk_id, segments)
    emitter.emit_segments(
        events.SEGMENTS,
        segments,
        stage="transcribe",
        chunk_id=chunk_id,
        status=TRANSCRIBED,
        model=models.transcriber.model_id,
        position=position,
    )
    emitter.emit(
        events.STAGE_COMPLETED, stage="transcribe", chunk_id=chunk_id, elapsed=timing["elapsed"], position=position
    )

    emitter.emit(events.STAGE_STARTED, stage="diarize", chunk_id=chunk_id, position=chunk.start)
    with clock.measure("diarize") as timing:
        speakers = models.diarizer.diarize(chunk)
        assign_speakers(segments, speakers.speaker_turns(), models.diarizer.model_id)
        for segment in segments:
            segment.status = DIARIZED
    timings["diarize"] = timing["elapsed"]
    emitter.emit_segments(
        events.UPDATE,
        segments,
        stage="diarize",
        chunk_id=chunk_id,
        status=DIARIZED,
        model=models.diarizer.model_id,
        position=position,
    )
    emitter.emit(
        events.STAGE_COMPLETED, stage="diarize", chunk_id=chunk_id, elapsed=timing["elapsed"], position=position
    )

    emitter.emit(events.STAGE_STARTED, stage="classify", chunk_id=chunk_id, position=chunk.start)
    with clock.measure("classify") as timing:
        classify_segments(session, models.classifier, segments)
    timings["classify"] = timing["elapsed"]
    emitter.emit_segments(
        events.UPDATE, segments, stage="classify", chunk_id=chunk_id, status=CLASSIFIED, position=position
    )
    emitter.emit(
        events.STAGE_COMPLETED, stage="classify", chunk_id=chunk_id, elapsed=timing["elapsed"], position=position
    )

    record = chunk.to_record() | {"segments": len(segments), "timings": {k: round(v, 3) for k, v in timings.items()}}
    session.store.commit_chunk(record, segments, speakers)
    session.complete_chunk(record)
    emitter.emit(
        events.CHUNK_COMPLETED,
        chunk_id=chunk_id,
        elapsed=sum(timings.values()),
        position=position,
        data={"timings": timings, "segments": len(segments)},
    )
    return speakers


def _global_pass(session: Session, models: Models, speakers: list[ChunkSpeakers]) -> None:
    """Recluster every local speaker of the session; relabel and reclassify what changed."""
    emitter = session.events
    emitter.emit(events.STAGE_STARTED, stage="global")
    new_speakers = recluster(speakers, models.diarizer.options)
    by_chunk: dict[int, list[Segment]] = defaultdict(list)
    for segment in session.segment_list():
        by_chunk[segment.chunk_id].append(segment)
    changed: list[Segment] = []
    for chunk in speakers:
        if new_speakers.get(chunk.chunk_id, chunk.speakers) == chunk.speakers:
            continue
        chunk.speakers = new_speakers[chunk.chunk_id]
        before = {s.segment_id: s.speaker_id for s in by_chunk[chunk.chunk_id]}
        assign_speakers(by_chunk[chunk.chunk_id], chunk.speaker_turns(), models.diarizer.model_id)
        changed += [s for s in by_chunk[chunk.chunk_id] if s.speaker_id != before[s.segment_id]]
    classify_segments(session, models.classifier, changed)
    session.store.rewrite_diarization(speakers)
    session.store.rewrite_segments(session.segment_list())
    session.set_speakers(speakers)
    emitter.emit_segments(events.UPDATE, changed, stage="global", model=models.diarizer.model_id, status="revised")
    emitter.emit(events.STAGE_COMPLETED, stage="global", data={"revised": len(changed)})
