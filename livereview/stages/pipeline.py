"""The streaming pipeline: chunk, transcribe, diarize, classify, and tell as it goes.

For each chunk the stages run in order and each one reports through the
:class:`RunSink` it is given, so rows appear seconds after the start and fill in
(speaker, IC/OOC) chunk by chunk. With two threads or more, the next chunk is read
and transcribed on a thread of its own while the current one is diarized and
classified, unless other processes keep the cores busy (see
:class:`~livereview.core.threads.ThreadPlan`); its events are told
once the current chunk is done, so the events come in the same order either way.
A final global pass reclusters all speakers and reports the segments it relabels.
The pipeline holds no reference to a session: the sink is its only way out
(``livereview.review.run.SessionSink`` writes a session directory and emits live events).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import pandas as pd
from tqdm.auto import tqdm

from livereview.core import events
from livereview.core.options import DiarizeOptions, FollowOptions, RunOptions
from livereview.core.party import Party
from livereview.core.saved import COMPLETE, PARTIAL, SavedRun
from livereview.core.segments import CLASSIFIED, DIARIZED, TRANSCRIBED, Segment
from livereview.core.threads import ThreadPlan, yield_priority
from livereview.core.turns import ChunkSpeakers
from livereview.stages.audio import Damage, follow_audio, iter_audio, probe
from livereview.stages.chunks import Chunk, chunk_audio
from livereview.stages.classify import Classifier, classify_segments, resolve_classifier
from livereview.stages.diarize import Diarizer, assign_speakers, recluster
from livereview.stages.threads import torch_threads
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
        What the classifier knows of the table: the party file, with the NPCs named so far.
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

    def keep_revisions(self, segments: list[Segment], speakers: list[ChunkSpeakers]) -> None:
        """Store what a recluster during the run changed: these segments and chunk diarizations."""

    def set_status(self, status: str, **values: Any) -> None:
        """Record the run status (and models, errors)."""

    def report_damage(self, damage: Damage) -> None:
        """Tell and keep a damaged stretch of the recording (the run goes on past it)."""

    def finish(self, status: str, *, duration: float) -> None:
        """Record the end of the run: its status (complete or partial) and how long the recording was."""

    def record_metrics(self, metrics: dict[str, Any]) -> None:
        """Keep the run's timings (audio seconds, stage seconds, real-time factors)."""


@dataclass
class StageClock:
    """Seconds spent per stage and on the whole run, for real-time factors.

    Stages overlap when transcription runs ahead, so the run's total is its wall-clock
    time (from the clock's creation to :meth:`stop`), not the sum of its stages.
    """

    seconds: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    started: float = field(default_factory=time.perf_counter)
    wall: float | None = None

    @contextmanager
    def measure(self, stage: str) -> Iterator[dict[str, float]]:
        started = time.perf_counter()
        timing = {"elapsed": 0.0}
        try:
            yield timing
        finally:
            timing["elapsed"] = time.perf_counter() - started
            self.seconds[stage] += timing["elapsed"]

    def stop(self) -> None:
        """End the run's wall-clock time (the first call counts)."""
        if self.wall is None:
            self.wall = time.perf_counter() - self.started

    def real_time_factors(self, audio_seconds: float) -> dict[str, float]:
        """Processing seconds per audio second, per stage and in total (wall-clock)."""
        if audio_seconds <= 0:
            return {}
        factors = {stage: seconds / audio_seconds for stage, seconds in self.seconds.items()}
        factors["total"] = (self.wall if self.wall is not None else time.perf_counter() - self.started) / audio_seconds
        return factors


@dataclass
class Models:
    """The three stages' models, loaded once per run."""

    transcriber: Transcriber
    diarizer: Diarizer
    classifier: Classifier

    @classmethod
    def load(cls, options: RunOptions, plan: ThreadPlan | None = None) -> Models:
        """Load the models of ``options``; transcription gets the threads of ``plan`` (default: the machine's)."""
        plan = plan or ThreadPlan.for_run()
        return cls(
            Transcriber(options.transcribe, threads=plan.transcribe),
            Diarizer(options.diarize),
            resolve_classifier(options.classifier),
        )

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
def _stage(
    sink: RunSink, clock: StageClock, stage: str, chunk: Chunk | None = None, *, elapsed: float | None = None
) -> Iterator[_Step]:
    """Emit ``stage_started``, time the body, then emit ``stage_completed`` (the one place that does).

    ``elapsed``: the stage's work already ran, ahead on another thread, and took this long;
    the body only tells its results.
    """
    step = _Step(sink, stage, chunk)
    sink.emit(events.STAGE_STARTED, stage=stage, chunk_id=step.chunk_id, position=chunk.start if chunk else None)
    if elapsed is None:
        with clock.measure(stage) as timing:
            yield step
        step.elapsed = timing["elapsed"]
    else:
        yield step
        clock.seconds[stage] += elapsed
        step.elapsed = elapsed
    sink.emit(
        events.STAGE_COMPLETED,
        stage=stage,
        chunk_id=step.chunk_id,
        elapsed=step.elapsed,
        position=step.position,
        data=dict(step.data),
    )


@dataclass
class _Transcription:
    """One chunk read and transcribed, and the damage found while reading it; no chunk: the recording ended."""

    chunk: Chunk | None
    segments: list[Segment]
    elapsed: float
    damage: list[Damage]
    #: The next chunk is being read and transcribed while this one is analysed.
    ahead: bool = False


def _transcriptions(
    chunks: Iterator[Chunk],
    transcribe: Callable[[Chunk], list[Segment]],
    found: list[Damage],
    *,
    ahead: Callable[[], bool] | None,
) -> Iterator[_Transcription]:
    """Read and transcribe chunk after chunk; the next one on a thread of its own meanwhile while ``ahead()`` says so.

    ``ahead`` is asked before each chunk is handed out (None: never ahead, no thread).
    ``found`` collects damage while the audio is read (on whichever thread reads it); each
    transcription carries what was found up to it, so it is told in the same place either way.
    The last item has no chunk and carries the damage found after the last chunk.
    """

    def read_and_transcribe() -> _Transcription:
        chunk = next(chunks, None)
        started = time.perf_counter()
        segments = transcribe(chunk) if chunk is not None else []
        damage = found[:]
        found.clear()
        return _Transcription(chunk, segments, time.perf_counter() - started, damage)

    if ahead is None:
        while (item := read_and_transcribe()).chunk is not None:
            yield item
        yield item
        return
    reader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="livereview-transcribe")
    try:
        pending = reader.submit(read_and_transcribe)
        while (item := pending.result()).chunk is not None:
            item.ahead = ahead()
            if item.ahead:
                pending = reader.submit(read_and_transcribe)
                yield item
            else:  # in turn: the next read starts once this chunk is analysed
                yield item
                pending = reader.submit(read_and_transcribe)
        yield item
    finally:  # closed early (the run failed): a read still waiting for a followed recording ends on its own
        reader.shutdown(wait=False, cancel_futures=True)


def run_pipeline(
    sink: RunSink,
    *,
    progress: bool = True,
    models: Models | None = None,
    follow: FollowOptions | None = None,
    stop: threading.Event | None = None,
    threads: int | ThreadPlan | None = None,
) -> None:
    """Process the sink's recording from its last completed chunk to the end.

    Parameters
    ----------
    sink : RunSink
        The session being processed: where results and events go.
    progress : bool
        Show a progress bar over the recording's seconds, with ETA.
    models : Models, optional
        Loaded models to reuse (benchmarks); loaded from the options otherwise.
    follow : FollowOptions, optional
        Follow a recording that is still being written (see
        :func:`~livereview.stages.audio.follow_audio`); read the finished file otherwise.
    stop : threading.Event, optional
        Set it to end a followed recording here; the global pass then runs as usual.
    threads : int or ThreadPlan, optional
        Threads in all (default: the cores this process may use, see
        :func:`~livereview.core.threads.thread_budget`), or the whole plan.

    A damaged recording is processed as far as its data allows: each damaged stretch is
    told (:meth:`RunSink.report_damage`) and the run ends ``"partial"`` instead of
    ``"complete"``.
    """
    info = probe(sink.audio_path)
    plan = threads if isinstance(threads, ThreadPlan) else ThreadPlan.for_run(threads)
    yield_priority()
    models = models or Models.load(sink.options, plan)
    clock = StageClock()
    saved = sink.resume_point()
    models.diarizer.restore(saved.speakers)
    speakers: list[ChunkSpeakers] = list(saved.speakers)
    segments: list[Segment] = list(saved.segments)
    start = end = saved.resume_at
    damaged: list[Damage] = []
    found: list[Damage] = []

    sink.set_status("running", models=models.identifiers())
    sink.emit(
        events.STAGE_STARTED,
        stage="run",
        position=start,
        status="running",
        data={
            "duration": None if follow else info.duration,
            "resumed_from_chunk": saved.next_chunk_id,
            "models": models.identifiers(),
            "follow": follow is not None,
            "threads": plan.to_dict(),
        },
    )
    total = None if follow else round(info.duration, 1)
    bar = tqdm(total=total, initial=round(start, 1), unit="s", desc=sink.session_id, disable=not progress)
    try:
        if follow is not None:
            audio = follow_audio(
                sink.audio_path, idle_timeout=follow.idle_timeout, poll=follow.poll, stop=stop, on_damage=found.append
            )
        else:
            audio = iter_audio(sink.audio_path, on_damage=found.append)
        chunks = (
            iter(())
            if saved.all_chunks_done
            else chunk_audio(audio, sink.options.chunk, first_chunk_id=saved.next_chunk_id, start=start)
        )
        transcriptions = _transcriptions(
            chunks,
            lambda chunk: models.transcriber.transcribe(chunk, sink.session_id),
            found,
            ahead=plan.overlap_now if plan.overlap else None,
        )
        with closing(transcriptions):
            for transcription in transcriptions:
                for damage in transcription.damage:
                    damaged.append(damage)
                    sink.report_damage(damage)
                chunk = transcription.chunk
                if chunk is None:
                    break
                threads = plan.analysis_threads(beside_transcription=transcription.ahead)
                with torch_threads(threads):
                    chunk_segments, chunk_speakers = _process_chunk(sink, models, clock, chunk, transcription)
                segments += chunk_segments
                speakers.append(chunk_speakers)
                if recluster_now(sink.options.diarize, len(speakers), models.diarizer.speaker_count()):
                    with torch_threads(threads):
                        _global_pass(sink, models, clock, segments, speakers, stage="recluster")
                    models.diarizer.adopt(speakers)
                end = chunk.end
                bar.n = round(end, 1)  # set, not added: sums of floats would show as 300.20000000000005
                bar.set_postfix(chunks=chunk.chunk_id + 1, segments=len(segments))
        with torch_threads(plan.analysis_threads()):
            _global_pass(sink, models, clock, segments, speakers)
    except Exception as error:
        sink.emit(events.ERROR, stage="run", status="failed", message=f"{type(error).__name__}: {error}")
        sink.set_status("failed", error=f"{type(error).__name__}: {error}")
        raise
    finally:
        clock.stop()
        bar.close()
        audio_seconds = end - start
        sink.record_metrics(
            {
                "audio_seconds": round(audio_seconds, 3),
                "stage_seconds": {k: round(v, 3) for k, v in clock.seconds.items()},
                "real_time_factors": {k: round(v, 4) for k, v in clock.real_time_factors(audio_seconds).items()},
                "threads": plan.to_dict(),
            }
        )
    factors = clock.real_time_factors(end - start)
    status = PARTIAL if damaged or saved.damaged else COMPLETE
    sink.finish(status, duration=end)
    sink.emit(
        events.SUMMARY,
        stage="run",
        status=status,
        position=end,
        message=f"{len(segments)} segments, real-time factor {factors.get('total', 0):.3f}"
        + (f"; the recording is damaged {damaged[0].describe()}" if damaged else ""),
        data={"segments": len(segments), "real_time_factors": factors, "damage": [d.to_dict() for d in damaged]},
    )


def _process_chunk(
    sink: RunSink, models: Models, clock: StageClock, chunk: Chunk, transcription: _Transcription
) -> tuple[list[Segment], ChunkSpeakers]:
    """Tell the chunk's transcription, diarize and classify it, telling each step; commit it."""
    segments = transcription.segments
    with _stage(sink, clock, "transcribe", chunk, elapsed=transcription.elapsed) as transcribed:
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
        data={"timings": timings, "segments": len(segments), "turns": [list(t) for t in speakers.speaker_turns()]},
    )
    return segments, speakers


def recluster_now(options: DiarizeOptions, chunks: int, speakers: int) -> bool:
    """Whether a bounded run reclusters after ``chunks`` chunks, its links having found ``speakers`` speakers.

    On the schedule of :func:`recluster_due`, and whenever the links have found more
    speakers than the bound allows; never when ``options.recluster_after`` is None.
    """
    limit, first = options.speaker_limit, options.recluster_after
    return bool(limit and first) and (speakers > limit or recluster_due(first, chunks))


def recluster_due(first: int | None, chunks: int) -> bool:
    """Whether a run that has ``chunks`` chunks reclusters now: at ``first``, then each time the count doubles."""
    if not first or chunks < first:
        return False
    ratio = chunks // first
    return chunks % first == 0 and ratio & (ratio - 1) == 0


def _global_pass(
    sink: RunSink,
    models: Models,
    clock: StageClock,
    segments: list[Segment],
    speakers: list[ChunkSpeakers],
    *,
    stage: str = "global",
) -> None:
    """Recluster every local speaker of the session; relabel and reclassify what changed.

    ``stage`` is ``"global"`` for the pass at the end, ``"recluster"`` for the passes during the run.
    """
    with _stage(sink, clock, stage) as step:
        new_speakers = recluster(speakers, models.diarizer.options)
        by_chunk: dict[int, list[Segment]] = defaultdict(list)
        for segment in segments:
            by_chunk[segment.chunk_id].append(segment)
        changed: list[Segment] = []
        relabelled: list[ChunkSpeakers] = []
        for chunk in speakers:
            if new_speakers.get(chunk.chunk_id, chunk.speakers) == chunk.speakers:
                continue
            chunk.speakers = new_speakers[chunk.chunk_id]
            relabelled.append(chunk)
            before = {s.segment_id: s.speaker_id for s in by_chunk[chunk.chunk_id]}
            assign_speakers(by_chunk[chunk.chunk_id], chunk.speaker_turns(), models.diarizer.model_id)
            changed += [s for s in by_chunk[chunk.chunk_id] if s.speaker_id != before[s.segment_id]]
        # the sink holds these same segment objects: the classifier's context shows the new speakers
        classify_segments(models.classifier, sink.classification_frame(changed), sink.party, changed)
        if stage == "global":
            sink.revise_speakers(segments, speakers)
        else:
            sink.keep_revisions(changed, relabelled)
        step.tell(events.UPDATE, changed, status="revised", model=models.diarizer.model_id)
        step.data["revised"] = len(changed)
