"""Speaker turns: who speaks when in a chunk, as the diarization stage finds them and the store keeps them.

A turn is ``(start, end, label)`` in recording seconds. :class:`ChunkSpeakers` holds
one chunk's turns with a speaker embedding per turn and the session speaker each
turn was linked to; it is plain data (numpy arrays, lists), so the store and the
reruns keep and read it without the diarization models.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

#: ``(start, end, label)`` in recording seconds.
Turn = tuple[float, float, str]


@dataclass
class ChunkSpeakers:
    """One chunk's diarization: speaker turns, an embedding per turn, and who each turn is.

    ``turns`` are (start, end, local label) in recording seconds, the local labels
    being the chunk pipeline's own; ``embeddings`` holds one speaker embedding per
    turn (NaN rows for turns too short to embed); ``speakers`` names the session
    speaker of each turn.
    """

    chunk_id: int
    turns: list[tuple[float, float, str]]
    embeddings: np.ndarray  # (num_turns, dimension)
    speakers: list[str] = field(default_factory=list)

    def speaker_turns(self) -> list[tuple[float, float, str]]:
        """Turns labelled with session speakers."""
        return [(start, end, speaker) for (start, end, _), speaker in zip(self.turns, self.speakers, strict=True)]

    def usable(self) -> np.ndarray:
        """Which turns have an embedding."""
        return np.isfinite(self.embeddings).all(axis=1) if len(self.turns) else np.zeros(0, dtype=bool)

    def to_record(self) -> dict[str, Any]:
        return {
            "chunk_id": self.chunk_id,
            "turns": [list(turn) for turn in self.turns],  # times already rounded to the millisecond
            "dimension": self.embeddings.shape[1],
            "embeddings": [None if not np.isfinite(e).all() else e.astype(float).tolist() for e in self.embeddings],
            "speakers": self.speakers,
        }

    @classmethod
    def from_record(cls, data: dict[str, Any]) -> ChunkSpeakers:
        dimension = data["dimension"]
        embeddings = np.array(
            [np.full(dimension, np.nan) if e is None else e for e in data["embeddings"]], dtype=np.float32
        ).reshape(len(data["turns"]), dimension)
        turns = [(a, b, label) for a, b, label in data["turns"]]
        return cls(data["chunk_id"], turns, embeddings, list(data["speakers"]))
