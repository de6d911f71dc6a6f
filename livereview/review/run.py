"""The run of a session: the sink the pipeline writes through, in the foreground or on a thread.

:class:`SessionSink` is the one port between the pipeline
(:func:`livereview.stages.pipeline.run_pipeline`) and a session: it stores results
through the session's :class:`~livereview.store.results.SessionStore` (under its lock)
and tells live events through the session's emitter. It is also how a program that
has results of its own (another transcriber, an import) writes them into a session.

Usage
-----
>>> sink = SessionSink(session)                                   # doctest: +SKIP
>>> sink.commit_chunk(record, segments, speakers)                 # doctest: +SKIP
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

import pandas as pd

from livereview.core.events import UPDATE
from livereview.core.options import FollowOptions, RunOptions
from livereview.core.party import Party
from livereview.core.saved import FINISHED, SavedRun
from livereview.core.segments import Segment
from livereview.core.threads import ThreadPlan
from livereview.core.turns import ChunkSpeakers
from livereview.live.metrics import EVENT_LOG_CHECKPOINT
from livereview.review.observability import live_metrics
from livereview.review.state import SessionState
from livereview.stages.audio import Damage, file_hash
from livereview.stages.pipeline import Models, run_pipeline
from livereview.store.writer import WriterLock

logger = logging.getLogger(__name__)


class SessionSink:
    """Writes a run's results into a session and tells its live events (a :class:`~livereview.stages.pipeline.RunSink`).

    Parameters
    ----------
    session : SessionState
        The opened session directory to write.
    """

    def __init__(self, session: SessionState) -> None:
        self._session = session
        self._store = session._store
        self.session_id: str = session.session_id
        self.options: RunOptions = session.options

    @property
    def audio_path(self) -> Path:
        return self._session.audio_path

    @property
    def party(self) -> Party | None:
        return self._session.classification_party()

    def resume_point(self) -> SavedRun:
        return self._store.resume_point()

    def classification_frame(self, segments: list[Segment]) -> pd.DataFrame:
        return self._session.classification_frame(segments)

    def emit(self, kind: str, **fields: Any) -> None:
        self._session.events.emit(kind, **fields)

    def emit_segments(self, kind: str, segments: list[Segment], **fields: Any) -> None:
        self._session.events.emit_segments(kind, segments, **fields)

    def keep_transcription(self, chunk_id: int, segments: list[Segment]) -> None:
        self._store.keep_transcription(chunk_id, segments)

    def commit_chunk(
        self, record: dict[str, Any], segments: list[Segment], speakers: ChunkSpeakers | None = None
    ) -> None:
        """Store a finished chunk (its ``chunks.jsonl`` record, segments and diarization, if any)."""
        self._store.commit_chunk(record, segments, speakers)

    def revise_speakers(self, segments: list[Segment], speakers: list[ChunkSpeakers]) -> None:
        self._store.replace_results(segments, speakers=speakers)

    def keep_revisions(self, segments: list[Segment], speakers: list[ChunkSpeakers]) -> None:
        self._store.append_revisions(segments, speakers)

    def set_status(self, status: str, **values: Any) -> None:
        self._store.update_metadata(status=status, **values)

    def report_damage(self, damage: Damage) -> None:
        """Keep the damage in ``metadata.json`` and tell it (an ``update`` event of stage ``audio``)."""
        self._store.record_damage(damage.to_dict())
        self._session.events.emit(
            UPDATE,
            stage="audio",
            status="damaged",
            position=damage.time,
            message=f"the recording is damaged {damage.describe()}",
            data={"damage": damage.to_dict()},
        )
        logger.warning("session %s: the recording is damaged %s", self.session_id, damage.describe())

    def finish(self, status: str, *, duration: float) -> None:
        """Record the run's end; a followed recording gets its final length and hash now that it is whole."""
        audio = dict(self._store.metadata["audio"])
        if audio.get("following"):
            audio |= {"duration": round(duration, 3), "sha256": file_hash(self.audio_path), "following": False}
        self._store.update_metadata(status=status, audio=audio)

    def record_metrics(self, metrics: dict[str, Any]) -> None:
        """Write ``metrics.json``: the run's timings with the event and subscriber counts."""
        session = self._session
        metrics = metrics | {
            "events_emitted": session.events.seq,
            "subscribers": session.events.stats(),
            "segments": self._store.segment_count(),
            "chunks": len(self._store.chunk_records()),
        }
        try:
            metrics = live_metrics(session) | metrics | {EVENT_LOG_CHECKPOINT: session.monitor.event_log.checkpoint()}
        except Exception:
            logger.exception("could not gather live metrics of %s; writing the run's timings only", self.session_id)
        self._store.write_metrics(metrics)


def run_session(
    session: SessionState,
    *,
    progress: bool = True,
    models: Models | None = None,
    follow: FollowOptions | None = None,
    stop: threading.Event | None = None,
    threads: int | ThreadPlan | None = None,
) -> None:
    """Process the session's recording, resuming after its last completed chunk, as its one writer.

    ``threads``: threads in all (default: the cores this process may use), see
    :class:`~livereview.core.threads.ThreadPlan`.

    Raises
    ------
    SessionBusyError
        Another run or rerun is writing the session (in this process or another).
    """
    if session.status in FINISHED:
        logger.info("session %s is already %s; nothing to run", session.session_id, session.status)
        return
    with WriterLock(session.directory).hold("run"):
        run_pipeline(SessionSink(session), progress=progress, models=models, follow=follow, stop=stop, threads=threads)


def start_session(
    session: SessionState,
    *,
    progress: bool = False,
    follow: FollowOptions | None = None,
    stop: threading.Event | None = None,
    threads: int | None = None,
) -> threading.Thread:
    """Run the session on a daemon thread; its error, if any, lands in ``session.error``."""
    if session.running:
        msg = f"session {session.session_id!r} is already running"
        raise RuntimeError(msg)

    def target() -> None:
        try:
            run_session(session, progress=progress, follow=follow, stop=stop, threads=threads)
        except BaseException as error:
            session.error = error
            logger.exception("run of session %s failed", session.session_id)

    session.error = None
    thread = threading.Thread(target=target, name=f"livereview-run-{session.session_id}", daemon=True)
    session._run_thread = thread
    thread.start()
    return thread
