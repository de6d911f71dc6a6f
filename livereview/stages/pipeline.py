"""The streaming pipeline: chunk, transcribe, diarize, classify, and tell as it goes.

For each chunk the stages run in order and each one reports through the
:class:`RunSink` it is given, so rows appear seconds after the start and fill in
(speaker, IC/OOC) chunk by chunk. A final global pass reclusters all speakers and
reports the segments it relabels. The pipeline holds no reference to a session:
the sink is its only way out (``livereview.review.run.SessionSink`` writes a session
directory and emits live events).
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import pandas as pd
from tqdm.auto import tqdm

from livereview.core import events
from livereview.core.options import RunOptions
from livereview.core.party import Party
from livereview.core.saved import SavedRun
from livereview.core.segments import CLASSIFIED, DIARIZED, TRANSCRIBED, Segment
from livereview.core.turns import ChunkSpeakers
from livereview.stages.audio import iter_audio, probe
from livereview.stages.chunks import Chunk, chunk_audio
from livereview.stages.classify import Classifier, classify_segments, resolve_classifier
from livereview.stages.diarize import Diarizer, assign_speakers, recluster
from livereview.stages.transcribe import Transcriber

logger = logging.getLogger(__name__)


class RunSink(Protocol):
    """Where a run reads its session from and hands its results and live events to.

    Attributes
    ----------
    session_id : str
    audio_path : pathlib.Path
    options : RunOptions
    party : Party or None
    """

    session_id: str
    audio_path: Path
    options: RunOptions
    party: Party | None

    def resume_point(self) -> SavedRun:
        """What earlier runs completed (lines about unfinished chunks are dropped)."""

    def classification_frame(self, segments: list[Segment]) -> pd.DataFrame:
        """The rows a classifier sees for ``segments`` (context, corrections, speaker mapping)."""

    def emit(self, kind: str, **fields: Any) -> None:
        """Tell one live event (fields of :class:`~livereview.core.events.LiveEvent`)."""

    def emit_segments(self, kind: str, segments: list[Segment], **fields: Any) -> None:
        """Tell ``segments`` in live events."""

    def keep_transcription(self, chunk_id: int, segments: list[Segment]) -> None:
        """Keep a chunk's segments as transcribed (the first rows a review shows).

        The sink keeps these very objects: the later stages fill them in place until
        :meth:`commit_chunk`, and the global pass relabels them before :meth:`revise_speakers`.
        """

    def commit_chunk(self, record: dict[str, Any], segments: list[Segment], speakers: ChunkSpeakers) -> None:
        """Store a finished chunk: from now on it counts as done."""

    def revise_speakers(self, segments: list[Segment], speakers: list[ChunkSpeakers]) -> None:
        """Store the global pass: every segment and chunk diarization after reclustering."""

    def set_status(self, status: str, **values: Any) -> None:
        """Record the run status (and models, errors)."""

    def record_metrics(self, metrics: dict[str, Any]) -> None:
        """Keep the run's timings (audio seconds, stage seconds, real-time factors)."""


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


@dataclass
class Models:
    """The three stages' models, loaded once per run."""

    transcriber: Transcriber
    diarizer: Diarizer
    classifier: Classifier

    @classmethod
    def load(cls, options: RunOptions) -> Models:
        return cls(Transcriber(options.transcribe), Diarizer(options.diarize), resolve_classifier(options.classifier))

    def identifiers(self) -> dict[str, str]:
        return {
            "asr": self.transcriber.model_id,
            "diarization": self.diarizer.model_id,
            "classifier": getattr(self.classifier, "name", getattr(self.classifier, "__name__", repr(self.classifier))),
        }


@dataclass
class _Step:
    """One stage of one chunk (or of the run) while it runs: what its events say."""

    sink: RunSink
    stage: str
    chunk: Chunk | None
    data: dict[str, Any] = field(default_factory=dict)
    elapsed: float = 0.0

    @property
    def chunk_id(self) -> int | None:
        return self.chunk.chunk_id if self.chunk is not None else None

    @property
    def position(self) -> float | None:
        """How far into the recording processing will have got once the step is done."""
        return self.chunk.end if self.chunk is not None else None

    def tell(self, kind: str, segments: list[Segment], *, status: str, model: str | None = None) -> None:
        """Emit the step's segments (new ones, or their new values)."""
        self.sink.emit_segments(
            kind, segments, stage=self.stage, chunk_id=self.chunk_id, status=status, model=model, position=self.position
        )


@contextmanager
def _stage(sink: RunSink, clock: StageClock, stage: str, chunk: Chunk | None = None) -> Iterator[_Step]:
    """Emit ``stage_started``, time the body, then emit ``stage_completed`` (the one place that does)."""
    step = _Step(sink, stage, chunk)
    sink.emit(events.STAGE_STARTED, stage=stage, chunk_id=step.chunk_id, position=chunk.start if chunk else None)
    with clock.measure(stage) as timing:
        yield step
    sink.emit(
        events.STAGE_COMPLETED,
        stage=stage,
        chunk_id=step.chunk_id,
        elapsed=timing["elapsed"],
        position=step.position,
        data=dict(step.data),
    )
    step.elapsed = timing["elapsed"]


def run_pipeline(sink: RunSink, *, progress: bool = True, models: Models | None = None) -> None:
    """Process the sink's recording from its last completed chunk to the end.

    Parameters
    ----------
    sink : RunSink
        The session being processed: where results and events go.
    progress : bool
        Show a progress bar over the recording's seconds, with ETA.
    models : Models, optional
        Loaded models to reuse (benchmarks); loaded from the options otherwise.
    """
    info = probe(sink.audio_path)
    clock = StageClock()
    with clock.measure("load"):
        models = models or Models.load(sink.options)
    saved = sink.resume_point()
    models.diarizer.restore(saved.speakers)
    speakers: list[ChunkSpeakers] = list(saved.speakers)
    segments: list[Segment] = list(saved.segments)
    start = saved.resume_at
    sink.set_status("running", models=models.identifiers())
    sink.emit(
        events.STAGE_STARTED,
        stage="run",
        position=start,
        status="running",
        data={"duration": info.duration, "resumed_from_chunk": saved.next_chunk_id, "models": models.identifiers()},
    )
    bar = tqdm(
        total=round(info.duration, 1), initial=round(start, 1), unit="s", desc=sink.session_id, disable=not progress
    )
    try:
        chunks = (
            ()
            if saved.all_chunks_done
            else chunk_audio(
                iter_audio(sink.audio_path), sink.options.chunk, first_chunk_id=saved.next_chunk_id, start=start
            )
        )
        for chunk in chunks:
            chunk_segments, chunk_speakers = _process_chunk(sink, models, clock, chunk)
            segments += chunk_segments
            speakers.append(chunk_speakers)
            bar.n = round(chunk.end, 1)  # set, not added: sums of floats would show as 300.20000000000005
            bar.set_postfix(chunks=chunk.chunk_id + 1, segments=len(segments))
        _global_pass(sink, models, clock, segments, speakers)
    except Exception as error:
        sink.emit(events.ERROR, stage="run", status="failed", message=f"{type(error).__name__}: {error}")
        sink.set_status("failed", error=f"{type(error).__name__}: {error}")
        raise
    finally:
        bar.close()
        del clock.seconds["load"]
        audio_seconds = info.duration - start
        sink.record_metrics(
            {
                "audio_seconds": round(audio_seconds, 3),
                "stage_seconds": {k: round(v, 3) for k, v in clock.seconds.items()},
                "real_time_factors": {k: round(v, 4) for k, v in clock.real_time_factors(audio_seconds).items()},
            }
        )
    factors = clock.real_time_factors(info.duration - start)
    sink.set_status("complete")
    sink.emit(
        events.SUMMARY,
        stage="run",
        status="complete",
        position=info.duration,
        message=f"{len(segments)} segments, real-time factor {factors.get('total', 0):.3f}",
        data={"segments": len(segments), "real_time_factors": factors},
    )


def _process_chunk(
    sink: RunSink, models: Models, clock: StageClock, chunk: Chunk
) -> tuple[list[Segment], ChunkSpeakers]:
    """Transcribe, diarize and classify one chunk, telling each step; commit it."""
    with _stage(sink, clock, "transcribe", chunk) as transcribed:
        segments = models.transcriber.transcribe(chunk, sink.session_id)
        sink.keep_transcription(chunk.chunk_id, segments)
        transcribed.tell(events.SEGMENTS, segments, status=TRANSCRIBED, model=models.transcriber.model_id)
    with _stage(sink, clock, "diarize", chunk) as diarized:
        speakers = models.diarizer.diarize(chunk)
        assign_speakers(segments, speakers.speaker_turns(), models.diarizer.model_id)
        for segment in segments:
            segment.status = DIARIZED
        diarized.tell(events.UPDATE, segments, status=DIARIZED, model=models.diarizer.model_id)
    with _stage(sink, clock, "classify", chunk) as classified:
        classify_segments(models.classifier, sink.classification_frame(segments), sink.party, segments)
        classified.tell(events.UPDATE, segments, status=CLASSIFIED)
    timings = {step.stage: step.elapsed for step in (transcribed, diarized, classified)}
    record = chunk.to_record() | {"segments": len(segments), "timings": {k: round(v, 3) for k, v in timings.items()}}
    sink.commit_chunk(record, segments, speakers)
    sink.emit(
        events.CHUNK_COMPLETED,
        chunk_id=chunk.chunk_id,
        elapsed=sum(timings.values()),
        position=chunk.end,
        data={"timings": timings, "segments": len(segments)},
    )
    return segments, speakers


def _global_pass(
    sink: RunSink, models: Models, clock: StageClock, segments: list[Segment], speakers: list[ChunkSpeakers]
) -> None:
    """Recluster every local speaker of the session; relabel and reclassify what changed."""
    with _stage(sink, clock, "global") as step:
        new_speakers = recluster(speakers, models.diarizer.options)
        by_chunk: dict[int, list[Segment]] = defaultdict(list)
        for segment in segments:
            by_chunk[segment.chunk_id].append(segment)
        changed: list[Segment] = []
        for chunk in speakers:
            if new_speakers.get(chunk.chunk_id, chunk.speakers) == chunk.speakers:
                continue
            chunk.speakers = new_speakers[chunk.chunk_id]
            before = {s.segment_id: s.speaker_id for s in by_chunk[chunk.chunk_id]}
            assign_speakers(by_chunk[chunk.chunk_id], chunk.speaker_turns(), models.diarizer.model_id)
            changed += [s for s in by_chunk[chunk.chunk_id] if s.speaker_id != before[s.segment_id]]
        # the sink holds these same segment objects: the classifier's context shows the new speakers
        classify_segments(models.classifier, sink.classification_frame(changed), sink.party, changed)
        sink.revise_speakers(segments, speakers)
        step.tell(events.UPDATE, changed, status="revised", model=models.diarizer.model_id)
        step.data["revised"] = len(changed)
