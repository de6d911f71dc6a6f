"""The segment currency: one transcribed utterance with its speaker and IC/OOC labels.

Every stage reads and writes :class:`Segment`; the session's segment table is a
:class:`pandas.DataFrame` with one row per segment and the columns in
:data:`SEGMENT_COLUMNS`. Times are float seconds on the recording's timeline.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

Seconds = float

#: Status values, in the order a segment goes through them.
TRANSCRIBED = "transcribed"
DIARIZED = "diarized"
CLASSIFIED = "classified"
NEEDS_ATTENTION = "needs attention"
STATUSES = (TRANSCRIBED, DIARIZED, CLASSIFIED, NEEDS_ATTENTION)

#: IC/OOC labels.
IC, OOC, MIXED = "IC", "OOC", "MIXED"
IC_OOC_LABELS = (IC, OOC, MIXED)

#: Fields an operator may override, in the order views show them.
OVERRIDABLE_FIELDS = ("speaker_id", "character_tag", "ic_ooc", "text", "confidence_flag")
#: Value of an overridable field the segment table does not carry (the operator's "uncertain" mark).
BASE_DEFAULTS: dict[str, Any] = {"confidence_flag": False}

#: Segment types produced by the classifier.
SEGMENT_TYPES = (
    "DM_NARRATION",
    "NPC_DIALOGUE",
    "CHARACTER_SPEECH",
    "CHARACTER_ACTION",
    "MECHANICS",
    "TABLE_TALK",
)


@dataclass(frozen=True)
class Word:
    """One word with its timing, as faster-whisper gives it (leading space kept)."""

    start: Seconds
    end: Seconds
    word: str
    probability: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "start": round(self.start, 3),
            "end": round(self.end, 3),
            "word": self.word,
            "probability": round(self.probability, 4),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Word:
        return cls(float(data["start"]), float(data["end"]), data["word"], float(data["probability"]))


@dataclass
class Segment:
    """One utterance of the session.

    ``segment_id`` is stable: once emitted it always names the same stretch of
    speech, so overrides can point at it. ``None`` marks a field a later stage
    has not filled yet.
    """

    session_id: str
    segment_id: str
    chunk_id: int
    start: Seconds
    end: Seconds
    text: str
    words: list[Word] = field(default_factory=list)
    asr_confidence: float | None = None
    speaker_id: str | None = None
    speaker_confidence: float | None = None
    ic_ooc: str | None = None
    ic_ooc_confidence: float | None = None
    segment_type: str | None = None
    character_tag: str | None = None
    status: str = TRANSCRIBED
    asr_model: str | None = None
    diarization_model: str | None = None
    classifier: str | None = None

    @property
    def duration(self) -> Seconds:
        return self.end - self.start

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict, times rounded to milliseconds."""
        data = {name: getattr(self, name) for name in SEGMENT_COLUMNS}  # every field but words is a plain value
        data["start"] = round(self.start, 3)
        data["end"] = round(self.end, 3)
        data["words"] = [word.to_dict() for word in self.words]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Segment:
        values = {f.name: data[f.name] for f in dataclasses.fields(cls) if f.name in data}
        values["words"] = [Word.from_dict(w) for w in data.get("words") or []]
        return cls(**values)


SEGMENT_COLUMNS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(Segment))


def segments_to_frame(segments: list[Segment] | list[dict[str, Any]]) -> pd.DataFrame:
    """Build the segment table, one row per segment, ordered by start time.

    The index is the ``segment_id``; it is also kept as a column.
    """
    rows = [s.to_dict() if isinstance(s, Segment) else s for s in segments]
    frame = pd.DataFrame(rows, columns=list(SEGMENT_COLUMNS))
    frame = frame.sort_values(["start", "segment_id"], kind="stable")
    return frame.set_index(pd.Index(frame["segment_id"], name=None))


def segment_id_for(chunk_id: int, index: int) -> str:
    """The stable id of the ``index``-th segment of chunk ``chunk_id``."""
    return f"c{chunk_id:05d}-s{index:03d}"
