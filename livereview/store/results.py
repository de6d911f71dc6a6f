"""A session's results on disk and in memory: the one writer of its result files.

:class:`SessionStore` owns ``metadata.json``, ``chunks.jsonl``, ``segments.jsonl``,
``stages/*.jsonl``, ``metrics.json`` and ``speaker_map.json`` (see
:mod:`livereview.store.layout`). The run (through its sink) and the reruns write
through it, always under its one lock, and it keeps what it wrote in memory so
readers never parse the files again.

A chunk counts as done only once its line is in ``chunks.jsonl`` (flushed and
synced); lines of other files about chunks that are not done are ignored on
load, so a run killed at any point resumes cleanly from the last done chunk.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from livereview.core.jsonl import JsonlTail, append_jsonl, read_json, read_jsonl, rewrite_jsonl, write_json_atomic
from livereview.core.saved import SavedRun
from livereview.core.segments import Segment
from livereview.core.turns import ChunkSpeakers
from livereview.store.layout import SessionPaths

logger = logging.getLogger(__name__)


class SessionStore:
    """Reads and writes one session directory's results, under one lock.

    Parameters
    ----------
    directory : path
        The session directory (it need not exist until :meth:`create`).
    """

    def __init__(self, directory: os.PathLike[str] | str) -> None:
        self.paths = SessionPaths.of(directory)
        self._lock = threading.RLock()
        self._metadata: dict[str, Any] = {}
        self._segments: dict[str, Segment] = {}
        self._chunks: list[dict[str, Any]] = []
        self._speakers: list[ChunkSpeakers] = []
        self._speaker_map: dict[str, str] = {}
        self._tails: list[JsonlTail] = []
        self._unfinished_segments: list[Segment] = []  # read by refresh() before their chunk's line
        self._unfinished_speakers: list[ChunkSpeakers] = []

    # -- creating and opening --------------------------------------------------------------

    def exists(self) -> bool:
        return self.paths.metadata.exists()

    def create(self, metadata: dict[str, Any]) -> None:
        """Make the directory and write its first ``metadata.json``."""
        with self._lock:
            self.paths.stages.mkdir(parents=True, exist_ok=True)
            self.write_metadata(metadata)

    def read_metadata(self) -> dict[str, Any]:
        if not self.paths.metadata.exists():
            msg = f"{self.paths.directory} is not a livereview session directory (no metadata.json)"
            raise FileNotFoundError(msg)
        return read_json(self.paths.metadata)

    def load(self) -> SavedRun:
        """Read the directory: metadata, speaker map, and the completed chunks with their results."""
        with self._lock:
            self._metadata = self.read_metadata()
            self._speaker_map = read_json(self.paths.speaker_map, {})
            # where later reads start: sizes taken first, so what is appended meanwhile is read again, not lost
            self._tails = [JsonlTail(path) for path in (self.paths.chunks, self.paths.segments, self.paths.diarization)]
            for tail in self._tails:
                tail.start_at_end()
            saved = self._read_saved()
            self._adopt(saved)
            return saved

    def refresh(self) -> None:
        """Read what another process wrote since: appended chunks are added, rewritten files read again.

        For following a session a batch worker or another notebook runs: reading grows
        with what was appended, not with the session's length.
        """
        with self._lock:
            chunks, segments, speakers = (tail.read() for tail in self._tails)
            if any(tail.restarted for tail in self._tails):
                self.load()  # a global pass or a rerun rewrote the results
                return
            self._metadata = self.read_metadata()
            self._speaker_map = read_json(self.paths.speaker_map, {})
            self._unfinished_segments += [Segment.from_dict(record) for record in segments]
            self._unfinished_speakers += [ChunkSpeakers.from_record(record) for record in speakers]
            known = {record["chunk_id"] for record in self._chunks}
            self._chunks += sorted((r for r in chunks if r["chunk_id"] not in known), key=lambda r: r["chunk_id"])
            done = {record["chunk_id"] for record in self._chunks}
            self._segments.update((s.segment_id, s) for s in self._unfinished_segments if s.chunk_id in done)
            finished = {c.chunk_id: c for c in self._unfinished_speakers if c.chunk_id in done}  # the last counts
            self._speakers = [finished.pop(chunk.chunk_id, chunk) for chunk in self._speakers]
            self._speakers += sorted(finished.values(), key=lambda c: c.chunk_id)
            self._unfinished_segments = [s for s in self._unfinished_segments if s.chunk_id not in done]
            self._unfinished_speakers = [c for c in self._unfinished_speakers if c.chunk_id not in done]

    # -- reading (snapshots) ---------------------------------------------------------------

    @property
    def metadata(self) -> dict[str, Any]:
        with self._lock:
            return self._metadata

    def segment_list(self) -> list[Segment]:
        """Base segments, ordered by start time (a snapshot of the list; the objects are shared)."""
        with self._lock:
            return sorted(self._segments.values(), key=lambda s: (s.start, s.segment_id))

    def segment(self, segment_id: str) -> Segment | None:
        with self._lock:
            return self._segments.get(segment_id)

    def segment_count(self) -> int:
        with self._lock:
            return len(self._segments)

    def chunk_records(self) -> list[dict[str, Any]]:
        """Completed chunks' records, in order."""
        with self._lock:
            return list(self._chunks)

    def speaker_chunks(self) -> list[ChunkSpeakers]:
        """Each completed chunk's diarization, in order."""
        with self._lock:
            return list(self._speakers)

    def speaker_map(self) -> dict[str, str]:
        with self._lock:
            return dict(self._speaker_map)

    # -- writing ---------------------------------------------------------------------------

    def write_metadata(self, metadata: dict[str, Any]) -> None:
        with self._lock:
            self._metadata = metadata
            write_json_atomic(self.paths.metadata, metadata)

    def update_metadata(self, **values: Any) -> None:
        """Change top-level fields of ``metadata.json`` (status, models, error...)."""
        with self._lock:
            self.write_metadata(self._metadata | values)

    def record_damage(self, damage: dict[str, Any]) -> None:
        """Keep a damaged stretch of the recording in ``metadata.json`` (once)."""
        with self._lock:
            known = list(self._metadata.get("damage", []))
            if damage not in known:
                self.update_metadata(damage=[*known, damage])

    def write_metrics(self, metrics: dict[str, Any]) -> None:
        with self._lock:
            write_json_atomic(self.paths.metrics, metrics)

    def read_metrics(self) -> dict[str, Any]:
        return read_json(self.paths.metrics, {})

    def set_speaker_map(self, mapping: dict[str, str]) -> None:
        """Replace the speaker mapping (``speaker_map.json``)."""
        with self._lock:
            self._speaker_map = dict(mapping)
            write_json_atomic(self.paths.speaker_map, self._speaker_map)

    def resume_point(self) -> SavedRun:
        """What earlier runs completed; lines about unfinished chunks are dropped from the files."""
        with self._lock:
            saved = self._read_saved()
            self._adopt(saved)
            self._truncate_incomplete(saved)
            return saved

    def keep_transcription(self, chunk_id: int, segments: list[Segment]) -> None:
        """Keep a chunk's segments as transcribed: in memory (these objects) and in ``stages/``."""
        with self._lock:
            self._segments.update((s.segment_id, s) for s in segments)
            record = {"chunk_id": chunk_id, "segments": [s.to_dict() for s in segments]}
            append_jsonl(self.paths.transcription, [record])

    def commit_chunk(
        self, record: dict[str, Any], segments: list[Segment], speakers: ChunkSpeakers | None = None
    ) -> None:
        """Store a finished chunk; its line in ``chunks.jsonl`` makes it count as done.

        ``speakers`` is the chunk's diarization; None for results that come without one.
        """
        with self._lock:
            if speakers is not None:
                append_jsonl(self.paths.diarization, [speakers.to_record()])
            append_jsonl(self.paths.segments, (s.to_dict() for s in segments))
            append_jsonl(self.paths.chunks, [record], sync=True)
            self._segments.update((s.segment_id, s) for s in segments)
            self._chunks.append(record)
            if speakers is not None:
                self._speakers.append(speakers)

    def replace_results(
        self,
        segments: Iterable[Segment],
        *,
        speakers: list[ChunkSpeakers] | None = None,
        speaker_map: dict[str, str] | None = None,
    ) -> None:
        """Replace base segments (and chunks' diarization, the speaker mapping), in memory and on disk.

        ``speakers`` replaces the chunks it names; the others stay.
        """
        with self._lock:
            self._take_revisions(segments, speakers or [])
            rewrite_jsonl(self.paths.segments, (s.to_dict() for s in self.segment_list()))
            if speakers is not None:
                rewrite_jsonl(self.paths.diarization, (s.to_record() for s in self._speakers))
            if speaker_map is not None:
                self.set_speaker_map(speaker_map)

    def append_revisions(self, segments: list[Segment], speakers: list[ChunkSpeakers]) -> None:
        """Revised base segments and chunks' diarization of done chunks, appended to their files.

        What a recluster during the run changes: appending costs what changed, not the
        session's length; a reader takes the last record of each segment and chunk, and the
        global pass at the end writes the files whole again (:meth:`replace_results`).
        """
        with self._lock:
            self._take_revisions(segments, speakers)
            append_jsonl(self.paths.diarization, (chunk.to_record() for chunk in speakers))
            append_jsonl(self.paths.segments, (s.to_dict() for s in segments), sync=True)

    # -- internals -------------------------------------------------------------------------

    def _take_revisions(self, segments: Iterable[Segment], speakers: list[ChunkSpeakers]) -> None:
        """Revised segments and chunks' diarization in memory, in place of those with their ids."""
        self._segments.update((s.segment_id, s) for s in segments)
        replaced = {chunk.chunk_id: chunk for chunk in speakers}
        self._speakers = [replaced.get(chunk.chunk_id, chunk) for chunk in self._speakers]

    def _read_saved(self) -> SavedRun:
        chunks = sorted(read_jsonl(self.paths.chunks), key=lambda record: record["chunk_id"])
        done = {record["chunk_id"] for record in chunks}
        segments: dict[str, Segment] = {}
        self._unfinished_segments, self._unfinished_speakers = [], []  # lines written before their chunk's
        for record in read_jsonl(self.paths.segments):
            if record["chunk_id"] in done:
                segments[record["segment_id"]] = Segment.from_dict(record)
            else:
                self._unfinished_segments.append(Segment.from_dict(record))
        speakers: dict[int, ChunkSpeakers] = {}
        for record in read_jsonl(self.paths.diarization):
            if record["chunk_id"] in done:
                speakers[record["chunk_id"]] = ChunkSpeakers.from_record(record)
            else:
                self._unfinished_speakers.append(ChunkSpeakers.from_record(record))
        ordered = sorted(segments.values(), key=lambda s: (s.start, s.segment_id))
        damage = list(self._metadata.get("damage", []))
        return SavedRun(chunks, ordered, [speakers[c] for c in sorted(speakers)], damage)

    def _adopt(self, saved: SavedRun) -> None:
        self._segments = {s.segment_id: s for s in saved.segments}
        self._chunks = list(saved.chunks)
        self._speakers = list(saved.speakers)

    def _truncate_incomplete(self, saved: SavedRun) -> None:
        """Drop lines about chunks that never completed, before a resumed run appends."""
        rewrite_jsonl(self.paths.segments, (s.to_dict() for s in saved.segments))
        rewrite_jsonl(self.paths.diarization, (s.to_record() for s in saved.speakers))
        if self.paths.transcription.exists():
            done = {record["chunk_id"] for record in saved.chunks}
            kept = [r for r in read_jsonl(self.paths.transcription) if r["chunk_id"] in done]
            rewrite_jsonl(self.paths.transcription, kept)

    @property
    def directory(self) -> Path:
        return self.paths.directory
