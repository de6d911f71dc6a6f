"""Where each file of a session directory lives.

Layout of ``output/<session_id>/``::

    metadata.json                 recording (path, hash, duration), models, options, status
    chunks.jsonl                  one line per completed chunk: the resume checkpoint
    segments.jsonl                base results (one segment per line)
    stages/transcription.jsonl    per chunk: the segments as transcribed
    stages/diarization.jsonl      per chunk: speaker turns, an embedding per turn, session speakers
    events.jsonl                  the live events of every run
    events.seq                    the last event sequence number given out
    metrics.json                  stage timings, real-time factors, event counts
    speaker_map.json              diarized speaker -> player
    overrides/                    operator corrections (see livereview.store.overrides)
    reruns/                       the rerun history (see livereview.store.rerun_log)
    exports/                      files written by exports
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class SessionPaths:
    """The paths of one session directory's files (nothing is created or read)."""

    directory: Path

    @classmethod
    def of(cls, directory: os.PathLike[str] | str) -> SessionPaths:
        return cls(Path(directory))

    @property
    def metadata(self) -> Path:
        return self.directory / "metadata.json"

    @property
    def chunks(self) -> Path:
        return self.directory / "chunks.jsonl"

    @property
    def segments(self) -> Path:
        return self.directory / "segments.jsonl"

    @property
    def stages(self) -> Path:
        return self.directory / "stages"

    @property
    def transcription(self) -> Path:
        return self.stages / "transcription.jsonl"

    @property
    def diarization(self) -> Path:
        return self.stages / "diarization.jsonl"

    @property
    def events(self) -> Path:
        return self.directory / "events.jsonl"

    @property
    def event_sequence(self) -> Path:
        return self.directory / "events.seq"

    @property
    def metrics(self) -> Path:
        return self.directory / "metrics.json"

    @property
    def speaker_map(self) -> Path:
        return self.directory / "speaker_map.json"

    @property
    def overrides(self) -> Path:
        return self.directory / "overrides"

    @property
    def reruns(self) -> Path:
        return self.directory / "reruns"

    @property
    def exports(self) -> Path:
        return self.directory / "exports"
