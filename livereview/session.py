"""A recorded game session: its directory, results, live events, and runs.

Usage
-----
>>> session = livereview.run("game.flac", num_speakers=4)        # doctest: +SKIP
>>> session.segments.head()                                       # doctest: +SKIP
>>> session = livereview.run("game.flac", background=True)       # doctest: +SKIP
>>> session.events.subscribe(print)                               # doctest: +SKIP
>>> session.wait()                                                # doctest: +SKIP
>>> session = livereview.open_session("output/game")              # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import os
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from livereview.audio import file_hash, probe
from livereview.chunks import ChunkOptions
from livereview.diarize import ChunkSpeakers, DiarizeOptions
from livereview.events import UPDATE, EventEmitter, JsonlEventLog, read_event_log
from livereview.health import session_health
from livereview.metrics import SessionMonitor, live_metrics, metrics_frame, session_metrics
from livereview.operators import OverrideFeed
from livereview.overrides import EDITOR, EditContext, OverrideRecord, OverrideStore
from livereview.rerun_log import Rerun, RerunBusyError, RerunLog
from livereview.segments import Segment, segments_to_frame
from livereview.store import SavedRun, SessionStore, write_json_atomic
from livereview.transcribe import TranscribeOptions
from livereview.view import merged_view

if TYPE_CHECKING:
    from livereview.events import LiveEvent
    from livereview.pipeline import StageClock

logger = logging.getLogger(__name__)

DEFAULT_OUTPUT = Path("output")


@dataclass(frozen=True)
class RunOptions:
    """Everything that decides a run's results; stored with the session."""

    chunk: ChunkOptions = field(default_factory=ChunkOptions)
    transcribe: TranscribeOptions = field(default_factory=TranscribeOptions)
    diarize: DiarizeOptions = field(default_factory=DiarizeOptions)
    classifier: Any = None
    party: str | None = None

    def to_config(self) -> dict[str, Any]:
        """JSON-ready options; secrets (hub token) left out, a classifier object named."""
        classifier = self.classifier
        if classifier is not None and not isinstance(classifier, str):
            # a spec string resolve_classifier can rebuild it from, where the classifier has one
            names = (getattr(classifier, attribute, None) for attribute in ("spec", "name", "__name__"))
            classifier = next((name for name in names if isinstance(name, str)), type(classifier).__name__)
        diarize = dataclasses.asdict(self.diarize)
        diarize.pop("token")
        return {
            "chunk": dataclasses.asdict(self.chunk),
            "transcribe": dataclasses.asdict(self.transcribe),
            "diarize": diarize,
            "classifier": classifier,
            "party": self.party,
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> RunOptions:
        return cls(
            ChunkOptions(**config["chunk"]),
            TranscribeOptions(**config["transcribe"]),
            DiarizeOptions(**config["diarize"]),
            config.get("classifier"),
            config.get("party"),
        )


def default_session_id(audio: Path) -> str:
    """A session id from the recording's file name (``Game Night 3.flac`` -> ``game-night-3``)."""
    return re.sub(r"[^a-z0-9]+", "-", audio.stem.lower()).strip("-") or "session"


class Session:
    """One recorded session: its directory, base results, live events and operator state.

    Create one with :func:`livereview.run` (or :meth:`Session.create`) and reopen one
    with :func:`livereview.open_session`. ``segments`` is the base segment table.
    """

    def __init__(self, directory: Path, metadata: dict[str, Any], options: RunOptions) -> None:
        self.directory = directory
        self.store = SessionStore(directory)
        self.metadata = metadata
        self.options = options
        self.session_id: str = metadata["session_id"]
        self.audio_path = Path(metadata["audio"]["path"])
        self._lock = threading.RLock()
        saved = self.store.load()
        self._segments: dict[str, Segment] = {s.segment_id: s for s in saved.segments}
        self._chunks: list[dict[str, Any]] = saved.chunks
        self._speakers: list[ChunkSpeakers] = saved.speakers
        self._speaker_map: dict[str, str] = self._read_json("speaker_map.json", {})
        self.rerun_log = RerunLog(directory)
        self._finish_interrupted_rerun()
        self._party: Any = None
        self._thread: threading.Thread | None = None
        self.error: BaseException | None = None
        last_seq = (
            max((e.seq for e in read_event_log(self.store.events_path)), default=0)
            if self.store.events_path.exists()
            else 0
        )
        self.events = EventEmitter(self.session_id, start_seq=last_seq)
        self._event_log = JsonlEventLog(self.store.events_path)
        self.events.subscribe(self._event_log, name="event-log", maxsize=100_000)
        self.monitor = SessionMonitor(self.session_id, self.store.events_path)
        self._overrides = OverrideStore(directory, self.session_id, self._edit_context)
        # Announces every correction in the log once, this session's at once and others' when polled.
        self.override_feed = OverrideFeed(
            self._overrides.log_path, self._announce_overrides, start_seq=self._overrides.seq
        )
        self._overrides.subscribe(lambda _records: self.override_feed.poll())

    # -- creation -----------------------------------------------------------------------------

    @classmethod
    def create(
        cls,
        audio: os.PathLike[str] | str,
        *,
        session_id: str | None = None,
        out_dir: os.PathLike[str] | str = DEFAULT_OUTPUT,
        options: RunOptions | None = None,
    ) -> Session:
        """Prepare the session directory for ``audio``, or reopen it to resume.

        Raises
        ------
        FileNotFoundError, AudioError
            The recording is missing, undecodable or empty.
        FileExistsError
            The session directory belongs to another recording or other options.
        """
        info = probe(audio)
        options = options or RunOptions()
        session_id = session_id or default_session_id(info.path)
        directory = Path(out_dir) / session_id
        store = SessionStore(directory)
        digest = file_hash(info.path)
        config = options.to_config()
        if store.exists():
            metadata = store.read_metadata()
            if metadata["audio"]["sha256"] != digest:
                msg = (
                    f"session directory {directory} holds results for another recording "
                    f"({metadata['audio']['path']}); pass another session id or output directory"
                )
                raise FileExistsError(msg)
            if metadata["config"] != config:
                changed = sorted(k for k in config if metadata["config"].get(k) != config[k])
                msg = (
                    f"session {session_id!r} was run with other options ({', '.join(changed)} differ); "
                    "resuming would mix results. Pass another session id, or use reruns to change part of it."
                )
                raise FileExistsError(msg)
            metadata["audio"]["path"] = str(info.path.resolve())
        else:
            store.create()
            metadata = {
                "session_id": session_id,
                "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                "audio": info.to_dict() | {"path": str(info.path.resolve()), "sha256": digest},
                "config": config,
                "status": "created",
                "models": {},
            }
            store.write_metadata(metadata)
        return cls(directory, metadata, options)

    @classmethod
    def open(cls, directory: os.PathLike[str] | str) -> Session:
        """Reopen a session directory written by an earlier run."""
        store = SessionStore(directory)
        metadata = store.read_metadata()
        return cls(Path(directory), metadata, RunOptions.from_config(metadata["config"]))

    # -- results ------------------------------------------------------------------------------

    @property
    def segments(self) -> pd.DataFrame:
        """Base results, one row per segment, ordered by start time."""
        return segments_to_frame(self.segment_list())

    def segment_spans(self) -> pd.DataFrame:
        """A light segment table: ids, chunks, times and the overridable fields, without words.

        On long sessions it is much cheaper than :attr:`segments` (20,000 segments: ~20 ms
        instead of ~700 ms).
        """
        segments = self.segment_list()
        columns = ("segment_id", "chunk_id", "start", "end", "speaker_id", "character_tag", "ic_ooc", "text")
        return pd.DataFrame(
            {name: [getattr(s, name) for s in segments] for name in columns},
            index=pd.Index([s.segment_id for s in segments]),
        )

    def segment_list(self) -> list[Segment]:
        """Base segments as objects, ordered by start time (a snapshot)."""
        with self._lock:
            return sorted(self._segments.values(), key=lambda s: (s.start, s.segment_id))

    @property
    def completed_chunks(self) -> set[int]:
        """Ids of the chunks every stage has finished (their segments can be edited)."""
        with self._lock:
            return {record["chunk_id"] for record in self._chunks}

    @property
    def chunks(self) -> pd.DataFrame:
        """Completed chunks with their spans and stage timings."""
        with self._lock:
            return pd.DataFrame(self._chunks)

    def speaker_chunks(self) -> list[ChunkSpeakers]:
        """Each completed chunk's diarization (turns, embeddings, session speakers), in order."""
        with self._lock:
            return list(self._speakers)

    def diarization(self) -> pd.DataFrame:
        """Speaker turns found so far: ``start``, ``end``, ``speaker_id`` (session labels)."""
        with self._lock:
            turns = [turn for chunk in self._speakers for turn in chunk.speaker_turns()]
        return pd.DataFrame(turns, columns=["start", "end", "speaker_id"]).sort_values("start", ignore_index=True)

    @property
    def status(self) -> str:
        return self.metadata.get("status", "created")

    @property
    def config(self) -> dict[str, Any]:
        return self.metadata["config"]

    def event_log(self) -> list[LiveEvent]:
        """Every live event written so far, in order."""
        return list(read_event_log(self.store.events_path))

    def metrics(self) -> dict[str, Any]:
        """Stage timings, real-time factors, events emitted/dropped per subscriber and client,
        throughput, override and rerun counts (see :func:`livereview.metrics.session_metrics`)."""
        return session_metrics(self)

    def metrics_frame(self) -> pd.DataFrame:
        """:meth:`metrics` as rows of ``metric``, ``scope``, ``value``."""
        return metrics_frame(self.metrics())

    def health(self) -> list[dict[str, Any]]:
        """Current degraded conditions (``key``, ``message``, ``since``, ``scope``); empty when all is well."""
        return session_health(self)

    # -- party and speakers -------------------------------------------------------------------

    @property
    def party(self) -> Any:
        """The party configuration, when the session has a party file."""
        if self._party is None and self.options.party:
            from livereview.party import load_party

            self._party = load_party(self.options.party)
        return self._party

    @property
    def speaker_map(self) -> dict[str, str]:
        """Diarized ``speaker_id`` -> player name."""
        with self._lock:
            return dict(self._speaker_map)

    def set_speaker_map(self, mapping: dict[str, str]) -> None:
        """Say which player each diarized speaker is; kept in ``speaker_map.json``."""
        with self._lock:
            self._speaker_map.update(mapping)
            write_json_atomic(self.directory / "speaker_map.json", self._speaker_map)

    @property
    def known_speakers(self) -> set[str]:
        """Speakers a correction may name without ``allow_new_speaker``.

        Diarized labels, the players of the speaker mapping and party, and speakers
        operators have already added.
        """
        with self._lock:
            known = {s.speaker_id for s in self._segments.values() if s.speaker_id}
            known |= {speaker for chunk in self._speakers for speaker in chunk.speakers}
            known |= set(self._speaker_map.values())
        party = self.party
        if party is not None:
            known |= {party.game_master, *(character.player for character in party.characters)}
        known |= {v["speaker_id"] for v in self._overrides.current_values().values() if "speaker_id" in v}
        return known

    # -- operator corrections -----------------------------------------------------------------

    def set_override(
        self,
        segment_id: str,
        *,
        user: str,
        reason: str | None = None,
        role: str = EDITOR,
        allow_new_speaker: bool = False,
        **fields: Any,
    ) -> list[OverrideRecord]:
        """Correct fields of one segment (``speaker_id``, ``character_tag``, ``ic_ooc``, ``text``,
        ``confidence_flag``); on disk before this returns."""
        return self._overrides.set(
            segment_id, user=user, role=role, reason=reason, allow_new_speaker=allow_new_speaker, **fields
        )

    def apply_overrides(
        self,
        frame: pd.DataFrame,
        *,
        user: str,
        confirm: bool = False,
        reason: str | None = None,
        role: str = EDITOR,
        allow_new_speaker: bool = False,
    ) -> str:
        """Apply a batch (one row per segment, one column per field), all or nothing; returns its id.

        Without ``confirm=True`` nothing is written and the error says what would change.
        """
        return self._overrides.apply_batch(
            frame, user=user, confirm=confirm, role=role, reason=reason, allow_new_speaker=allow_new_speaker
        )

    def undo_last_batch(self, user: str, *, role: str = EDITOR) -> str | None:
        """Revert ``user``'s last applied batch (appends revert records); its id, or None."""
        return self._overrides.undo_last_batch(user, role=role)

    def override_log(self) -> pd.DataFrame:
        """Every correction ever made, in order (the audit trail)."""
        return self._overrides.log()

    def overrides(self) -> pd.DataFrame:
        """Corrections in effect: one row per segment and field, with the model's value."""
        return self._overrides.current()

    def review(self, **options: Any) -> Any:
        """Display the live review of this session in Jupyter; see :func:`livereview.widgets.review`."""
        from livereview.widgets import review

        return review(self, **options)

    def view(self, *, show_base: bool = False, show_disagreements: bool = False) -> pd.DataFrame:
        """Base results with corrections applied; ``overridden`` lists the corrected fields.

        With ``show_base=True`` a ``<field>_base`` column shows the model's value beside each;
        with ``show_disagreements=True`` a ``disagreements`` column lists the corrected fields a
        later rerun disagrees with (see :meth:`disagreements`).
        """
        view = merged_view(self.segments, self._overrides.current_values(), show_base=show_base)
        if show_disagreements:
            found = self.disagreements().groupby("segment_id")["field"].agg(tuple)
            view["disagreements"] = [found.get(sid, ()) for sid in view.index]
        return view

    def export(self, fmt: str, path: os.PathLike[str] | str | None = None, *, selection: str = "all") -> Path:
        """Write the corrected view as ``txt``, ``srt``, ``vtt``, ``json`` or ``rttm``; returns the path.

        ``selection`` is ``"all"``, ``"ic"`` or ``"ooc"``. The default path is
        ``exports/<session_id>[-ic|-ooc].<fmt>`` in the session directory.
        """
        from livereview.exports import write_export

        if path is None:
            suffix = "" if selection == "all" else f"-{selection}"
            (self.directory / "exports").mkdir(exist_ok=True)
            path = self.directory / "exports" / f"{self.session_id}{suffix}.{fmt}"
        return write_export(self.view(), self._export_metadata(), fmt, path, selection=selection)

    def export_text(self, fmt: str, *, selection: str = "all") -> str:
        """The corrected view in format ``fmt`` as a string (see :meth:`export`)."""
        from livereview.exports import export

        return export(self.view(), self._export_metadata(), fmt, selection=selection)

    def _export_metadata(self) -> dict[str, Any]:
        return {
            "session_id": self.session_id,
            "audio_path": str(self.audio_path),
            "duration": self.metadata["audio"]["duration"],
            "models": self.metadata.get("models", {}),
            "status": self.status,
        }

    def corrected_values(self) -> dict[str, dict[str, Any]]:
        """Operator corrections in effect: segment id -> field -> value."""
        return self._overrides.current_values()

    def _edit_context(self) -> EditContext:
        return EditContext(self.segment_spans(), self.completed_chunks, self.known_speakers)

    def watch_overrides(self, interval: float = 0.5) -> OverrideFeed:
        """Also announce corrections other sessions or kernels write, polling every ``interval`` s.

        A correction that replaces another user's carries ``data["conflicts"]`` in its
        ``update`` event. Stop with ``session.override_feed.stop()``.
        """
        return self.override_feed.watch(interval)

    def _announce_overrides(self, records: list[OverrideRecord], data: dict[str, Any] | None = None) -> None:
        """Tell live subscribers about acknowledged corrections: the corrected rows as they now read."""
        with self._lock:  # only the touched rows are merged: cheap on long sessions
            touched = [self._segments[s] for s in dict.fromkeys(r.segment_id for r in records) if s in self._segments]
        rows = merged_view(segments_to_frame(touched), self.corrected_values()).drop(columns=["words", "overridden"])
        self.events.emit_segments(
            UPDATE,
            json.loads(rows.to_json(orient="records")),
            stage="override",
            status="edited",
            data={"user": records[0].user, "batch_id": records[0].batch_id, "op": records[0].op} | (data or {}),
        )

    # -- partial reruns -----------------------------------------------------------------------

    def reclassify(self, selection: Any = None, *, user: str, **options: Any) -> Rerun:
        """Classify a selection again; see :func:`livereview.reruns.reclassify`."""
        from livereview.reruns import reclassify

        return reclassify(self, selection, user=user, **options)

    def rediarize(self, selection: Any = None, *, user: str, **options: Any) -> Rerun:
        """Diarize a selection again; see :func:`livereview.reruns.rediarize`."""
        from livereview.reruns import rediarize

        return rediarize(self, selection, user=user, **options)

    def preview_reclassify(self, selection: Any = None, **options: Any) -> pd.DataFrame:
        """What :meth:`reclassify` would give, changing nothing; see :func:`livereview.reruns.preview_reclassify`."""
        from livereview.reruns import preview_reclassify

        return preview_reclassify(self, selection, **options)

    def rerun_history(self) -> pd.DataFrame:
        """One row per rerun: id, kind, user, model, variant, times, segments and changes."""
        return self.rerun_log.history()

    def rerun(self, rerun_id: str) -> Rerun:
        """A past rerun by id (``rerun.diff()`` compares it with what came before it)."""
        return self.rerun_log.get(rerun_id)

    def disagreements(self) -> pd.DataFrame:
        """Corrections in effect that the latest rerun of their field disagrees with."""
        from livereview.reruns import disagreements

        return disagreements(self)

    def _finish_interrupted_rerun(self) -> None:
        """Complete a rerun whose commit a killed process left journaled (see :mod:`livereview.rerun_log`)."""
        if not self.rerun_log.pending_path.exists():
            return
        try:
            lock = self.rerun_log.lock()
        except RerunBusyError:
            return  # another process is committing it right now
        try:
            from livereview.reruns import finish_interrupted

            finish_interrupted(self, self.rerun_log)
        finally:
            lock.release()

    # -- running ------------------------------------------------------------------------------

    def run(self, *, progress: bool = True) -> Session:
        """Process the recording (resuming after the last completed chunk) and return ``self``."""
        from livereview.pipeline import run_pipeline

        if self.status == "complete":
            logger.info("session %s is already complete; nothing to run", self.session_id)
            return self
        run_pipeline(self, progress=progress)
        return self

    def start(self, *, progress: bool = False) -> Session:
        """Run in a background thread, so a notebook stays responsive; see :meth:`wait`."""
        if self.running:
            msg = f"session {self.session_id!r} is already running"
            raise RuntimeError(msg)

        def target() -> None:
            try:
                self.run(progress=progress)
            except BaseException as error:
                self.error = error
                logger.exception("run of session %s failed", self.session_id)

        self.error = None
        self._thread = threading.Thread(target=target, name=f"livereview-run-{self.session_id}", daemon=True)
        self._thread.start()
        return self

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def wait(self, timeout: float | None = None) -> Session:
        """Wait for a background run; re-raise its error."""
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                msg = f"session {self.session_id!r} still running after {timeout} s"
                raise TimeoutError(msg)
        if self.error is not None:
            raise self.error
        return self

    def close(self) -> None:
        """Deliver pending live events and release the event log and override store."""
        self.override_feed.stop()
        self.events.close()
        self._event_log.close()
        self._overrides.close()

    # -- used by the pipeline -----------------------------------------------------------------

    def resume_point(self) -> SavedRun:
        """What earlier runs completed; lines about unfinished chunks are dropped."""
        with self._lock:
            saved = self.store.load()
            self.store.truncate_incomplete(saved)
            self._segments = {s.segment_id: s for s in saved.segments}
            self._chunks, self._speakers = saved.chunks, saved.speakers
            return saved

    def add_segments(self, segments: list[Segment]) -> None:
        with self._lock:
            self._segments.update((s.segment_id, s) for s in segments)

    def complete_chunk(self, record: dict[str, Any]) -> None:
        with self._lock:
            self._chunks.append(record)

    def set_speakers(self, speakers: list[ChunkSpeakers]) -> None:
        with self._lock:
            self._speakers = list(speakers)

    def replace_results(
        self,
        segments: list[Segment],
        *,
        speakers: list[ChunkSpeakers] | None = None,
        speaker_map: dict[str, str] | None = None,
    ) -> None:
        """Replace base segments (and chunks' diarization, the speaker mapping) in memory and on disk."""
        with self._lock:
            self._segments.update((s.segment_id, s) for s in segments)
            self.store.rewrite_segments(self.segment_list())
            if speakers is not None:
                replaced = {chunk.chunk_id: chunk for chunk in speakers}
                self._speakers = [replaced.get(chunk.chunk_id, chunk) for chunk in self._speakers]
                self.store.rewrite_diarization(self._speakers)
            if speaker_map is not None:
                self._speaker_map = dict(speaker_map)
                write_json_atomic(self.directory / "speaker_map.json", self._speaker_map)

    def mark(self, status: str, **values: Any) -> None:
        """Record the run status (and models, errors) in ``metadata.json``."""
        with self._lock:
            self.metadata.update(values, status=status)
            self.store.write_metadata(self.metadata)

    def record_metrics(self, clock: StageClock, audio_seconds: float) -> None:
        metrics = {
            "audio_seconds": round(audio_seconds, 3),
            "stage_seconds": {k: round(v, 3) for k, v in clock.seconds.items()},
            "real_time_factors": {k: round(v, 4) for k, v in clock.real_time_factors(audio_seconds).items()},
            "events_emitted": self.events.seq,
            "subscribers": self.events.stats(),
            "segments": len(self._segments),
            "chunks": len(self._chunks),
        }
        try:
            metrics = live_metrics(self) | metrics
        except Exception:
            logger.exception("could not gather live metrics of %s; writing the run's timings only", self.session_id)
        self.store.write_metrics(metrics)

    def _read_json(self, name: str, default: Any) -> Any:
        path = self.directory / name
        return json.loads(path.read_text(encoding="utf-8")) if path.exists() else default

    def __repr__(self) -> str:
        return (
            f"<Session {self.session_id!r} {self.status}: {len(self._segments)} segments, {len(self._chunks)} chunks>"
        )
