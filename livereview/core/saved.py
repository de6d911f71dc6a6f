"""What a session directory holds of its run so far: the completed chunks, their segments and speaker turns.

A run resumes after the last completed chunk; the store reads a :class:`SavedRun`
and the pipeline continues from it. The run's status is one of :data:`RUN_STATUSES`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from livereview.core.segments import Segment
from livereview.core.turns import ChunkSpeakers

#: Run statuses: not run yet, running, done, done as far as a damaged recording allowed, failed.
CREATED, RUNNING, COMPLETE, PARTIAL, FAILED = "created", "running", "complete", "partial", "failed"
RUN_STATUSES = (CREATED, RUNNING, COMPLETE, PARTIAL, FAILED)
#: Statuses of a run that has nothing left to do.
FINISHED = (COMPLETE, PARTIAL)


@dataclass
class SavedRun:
    """Completed chunks (their ``chunks.jsonl`` records), segments and diarization, in order."""

    chunks: list[dict[str, Any]]
    segments: list[Segment]
    speakers: list[ChunkSpeakers]
    damage: list[dict[str, Any]] = field(default_factory=list)

    @property
    def resume_at(self) -> float:
        """Where the next chunk starts, in seconds."""
        return self.chunks[-1]["end"] if self.chunks else 0.0

    @property
    def next_chunk_id(self) -> int:
        return self.chunks[-1]["chunk_id"] + 1 if self.chunks else 0

    @property
    def damaged(self) -> bool:
        """Whether an earlier run found the recording damaged (its damage is kept in ``metadata.json``)."""
        return bool(self.damage)

    @property
    def all_chunks_done(self) -> bool:
        """Whether the last chunk of the recording is among the completed ones."""
        return bool(self.chunks) and bool(self.chunks[-1].get("final", False))
