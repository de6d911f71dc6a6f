"""The live event schema: what a run, a rerun or a correction tells while it happens, and its JSON form.

A :class:`LiveEvent` is a small frozen record whose ``kind`` is the wire tag; the
emitter that numbers and delivers them lives in :mod:`livereview.live.emitter`. This
module depends on the segment currency only, so every consumer (widgets, server,
other programs) reads one schema.

Usage
-----
>>> event = LiveEvent("demo", 1, STAGE_STARTED, stage="transcribe")
>>> LiveEvent.from_json(event.to_json()) == event
True
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from livereview.core.jsonl import dumps
from livereview.core.segments import Segment

STAGE_STARTED = "stage_started"
SEGMENTS = "segments"
STAGE_COMPLETED = "stage_completed"
CHUNK_COMPLETED = "chunk_completed"
UPDATE = "update"
SUMMARY = "summary"
ERROR = "error"
EVENT_KINDS = (STAGE_STARTED, SEGMENTS, STAGE_COMPLETED, CHUNK_COMPLETED, UPDATE, SUMMARY, ERROR)

#: Most segments carried by one event; longer lists are split into several events.
MAX_SEGMENTS_PER_EVENT = 20


@dataclass(frozen=True)
class SegmentPayload:
    """The part of a segment that travels in live events."""

    segment_id: str
    chunk_id: int
    start: float
    end: float
    text: str
    speaker_id: str | None = None
    ic_ooc: str | None = None
    character_tag: str | None = None
    segment_type: str | None = None
    asr_confidence: float | None = None
    speaker_confidence: float | None = None
    ic_ooc_confidence: float | None = None
    status: str | None = None

    @classmethod
    def from_segment(cls, segment: Segment | dict[str, Any]) -> SegmentPayload:
        data = segment.to_dict() if isinstance(segment, Segment) else segment
        return cls(**{f.name: data.get(f.name) for f in fields(cls)})


@dataclass(frozen=True)
class LiveEvent:
    """One live event. ``kind`` is the wire tag; ``seq`` increases by one per event.

    Parameters
    ----------
    session_id : str
        The recorded session the event belongs to.
    seq : int
        Position in the session's event stream (monotonic, from 1).
    kind : str
        One of :data:`EVENT_KINDS`.
    stage : str, optional
        ``"transcribe"``, ``"diarize"``, ``"classify"``, ``"recluster"`` (during the run), ``"global"`` or ``"run"``.
    chunk_id : int, optional
        The chunk the event is about.
    timestamp : float
        Unix time at emission.
    elapsed : float, optional
        Seconds the stage or chunk took.
    position : float, optional
        How far into the recording processing has reached, in seconds.
    model : str, optional
        Model identifier of the stage.
    status : str, optional
        Segment status this event brings its segments to, or a run status.
    message : str, optional
        Human-readable text (errors, summaries).
    segments : tuple of SegmentPayload
        Up to :data:`MAX_SEGMENTS_PER_EVENT` segments.
    data : dict
        Small extra facts (counts, totals, dropped events).
    """

    session_id: str
    seq: int
    kind: str
    stage: str | None = None
    chunk_id: int | None = None
    timestamp: float = 0.0
    elapsed: float | None = None
    position: float | None = None
    model: str | None = None
    status: str | None = None
    message: str | None = None
    segments: tuple[SegmentPayload, ...] = ()
    data: dict[str, Any] = field(default_factory=dict, hash=False)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"segments": [asdict(s) for s in self.segments]}

    def to_json(self) -> str:
        return dumps(self.to_dict())

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LiveEvent:
        unknown = set(data) - {f.name for f in fields(cls)}
        if unknown:
            msg = f"unknown live event fields {sorted(unknown)}; expected {[f.name for f in fields(cls)]}"
            raise ValueError(msg)
        if data.get("kind") not in EVENT_KINDS:
            msg = f"unknown live event kind {data.get('kind')!r}; expected one of {EVENT_KINDS}"
            raise ValueError(msg)
        segments = tuple(SegmentPayload(**s) for s in data.get("segments", ()))
        return cls(**(data | {"segments": segments, "data": dict(data.get("data", {}))}))

    @classmethod
    def from_json(cls, text: str) -> LiveEvent:
        return cls.from_dict(json.loads(text))
