"""The session directory: what a run writes, chunk by chunk, so it can be resumed.

Layout of ``output/<session_id>/``::

    metadata.json                 recording (path, hash, duration), models, options, status
    chunks.jsonl                  one line per completed chunk: the resume checkpoint
    segments.jsonl                base results (one segment per line)
    stages/transcription.jsonl    per chunk: the segments as transcribed
    stages/diarization.jsonl      per chunk: speaker turns, an embedding per turn, session speakers
    events.jsonl                  the live events of every run
    metrics.json                  stage timings, real-time factors, event counts
    overrides/                    operator corrections (see livereview.overrides)

A chunk counts as done only once its line is in ``chunks.jsonl`` (flushed and
synced); lines of other files about chunks that are not done are ignored on
load, so a run killed at any point resumes cleanly from the last done chunk.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from livereview.diarize import ChunkSpeakers
from livereview.segments import Segment

logger = logging.getLogger(__name__)


def write_json_atomic(path: Path, data: Any) -> None:
    """Replace ``path`` with ``data`` as JSON in one step (write, sync, rename)."""
    temporary = path.with_name(f".{path.name}.tmp")
    with temporary.open("w", encoding="utf-8") as stream:
        json.dump(data, stream, indent=2, ensure_ascii=False)
        stream.flush()
        os.fsync(stream.fileno())
    temporary.replace(path)


def append_jsonl(path: Path, records: Iterable[dict[str, Any]], *, sync: bool = False) -> None:
    """Append records as JSON lines in a single write."""
    text = "".join(json.dumps(record, ensure_ascii=False) + "\n" for record in records)
    if not text:
        return
    with path.open("a", encoding="utf-8") as stream:
        stream.write(text)
        stream.flush()
        if sync:
            os.fsync(stream.fileno())


def rewrite_jsonl(path: Path, records: Iterable[dict[str, Any]]) -> None:
    """Replace ``path`` with ``records`` as JSON lines in one step (write, sync, rename)."""
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.unlink(missing_ok=True)
    temporary.touch()
    append_jsonl(temporary, records, sync=True)
    temporary.replace(path)


def read_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    """Complete JSON lines of ``path``; a torn or unparsable last line is skipped with a warning."""
    if not path.exists():
        return
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, 1):
            try:
                record = json.loads(line) if line.endswith("\n") else None
            except json.JSONDecodeError:
                record = None
            if record is None:
                logger.warning("%s line %d is incomplete (interrupted write); ignored", path, number)
                continue
            yield record


@dataclass
class SavedRun:
    """What a session directory holds about completed chunks."""

    chunks: list[dict[str, Any]]
    segments: list[Segment]
    speakers: list[ChunkSpeakers]


class SessionStore:
    """Reads and writes one session directory."""

    def __init__(self, directory: os.PathLike[str] | str) -> None:
        self.directory = Path(directory)
        self.metadata_path = self.directory / "metadata.json"
        self.chunks_path = self.directory / "chunks.jsonl"
        self.segments_path = self.directory / "segments.jsonl"
        self.stages_dir = self.directory / "stages"
        self.transcription_path = self.stages_dir / "transcription.jsonl"
        self.diarization_path = self.stages_dir / "diarization.jsonl"
        self.events_path = self.directory / "events.jsonl"
        self.metrics_path = self.directory / "metrics.json"

    def create(self) -> None:
        self.stages_dir.mkdir(parents=True, exist_ok=True)

    def exists(self) -> bool:
        return self.metadata_path.exists()

    def read_metadata(self) -> dict[str, Any]:
        if not self.metadata_path.exists():
            msg = f"{self.directory} is not a livereview session directory (no metadata.json)"
            raise FileNotFoundError(msg)
        return json.loads(self.metadata_path.read_text(encoding="utf-8"))

    def write_metadata(self, metadata: dict[str, Any]) -> None:
        write_json_atomic(self.metadata_path, metadata)

    def write_metrics(self, metrics: dict[str, Any]) -> None:
        write_json_atomic(self.metrics_path, metrics)

    def save_transcription(self, chunk_id: int, segments: list[Segment]) -> None:
        """Keep the chunk's segments as the transcription stage gave them."""
        append_jsonl(self.transcription_path, [{"chunk_id": chunk_id, "segments": [s.to_dict() for s in segments]}])

    def commit_chunk(self, record: dict[str, Any], segments: list[Segment], speakers: ChunkSpeakers) -> None:
        """Store a finished chunk; its line in ``chunks.jsonl`` makes it count as done."""
        append_jsonl(self.diarization_path, [speakers.to_record()])
        append_jsonl(self.segments_path, (s.to_dict() for s in segments))
        append_jsonl(self.chunks_path, [record], sync=True)

    def rewrite_segments(self, segments: Iterable[Segment]) -> None:
        """Replace ``segments.jsonl`` in one step (after the global pass revised speakers)."""
        rewrite_jsonl(self.segments_path, (s.to_dict() for s in segments))

    def rewrite_diarization(self, speakers: Iterable[ChunkSpeakers]) -> None:
        rewrite_jsonl(self.diarization_path, (s.to_record() for s in speakers))

    def load(self) -> SavedRun:
        """Completed chunks with their segments and speakers, in order."""
        chunks = sorted(read_jsonl(self.chunks_path), key=lambda record: record["chunk_id"])
        done = {record["chunk_id"] for record in chunks}
        segments: dict[str, Segment] = {}
        for record in read_jsonl(self.segments_path):
            if record["chunk_id"] in done:
                segments[record["segment_id"]] = Segment.from_dict(record)
        speakers: dict[int, ChunkSpeakers] = {}
        for record in read_jsonl(self.diarization_path):
            if record["chunk_id"] in done:
                speakers[record["chunk_id"]] = ChunkSpeakers.from_record(record)
        ordered = sorted(segments.values(), key=lambda s: (s.start, s.segment_id))
        return SavedRun(chunks, ordered, [speakers[c] for c in sorted(speakers)])

    def truncate_incomplete(self, saved: SavedRun) -> None:
        """Drop lines about chunks that never completed, before a resumed run appends."""
        self.rewrite_segments(saved.segments)
        self.rewrite_diarization(saved.speakers)
        if self.transcription_path.exists():
            done = {record["chunk_id"] for record in saved.chunks}
            kept = [r for r in read_jsonl(self.transcription_path) if r["chunk_id"] in done]
            rewrite_jsonl(self.transcription_path, kept)
