"""Live events: the schema, its JSON form, and a non-blocking callback emitter.

The pipeline calls :meth:`EventEmitter.emit` after each step; every subscriber
gets the events on its own thread through a bounded queue, so a slow or failing
subscriber never slows or stops the run. When a subscriber's queue is full the
newest events are dropped for that subscriber only, and once it catches up it
receives a ``summary`` event saying how many it missed, so it can resync from
the session's snapshot.

Usage
-----
>>> emitter = EventEmitter("demo")
>>> recorder = RecordingSubscriber()
>>> subscription = emitter.subscribe(recorder, name="recorder")
>>> _ = emitter.emit("stage_started", stage="transcribe")
>>> emitter.close()
>>> [event.kind for event in recorder.events]
['stage_started']
"""

from __future__ import annotations

import json
import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from livereview.segments import Segment

logger = logging.getLogger(__name__)

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
#: Environment flag that turns live emission off when set to 0/false/no/off.
LIVE_STREAM_FLAG = "LIVE_STREAM_ENABLED"


def live_stream_enabled(default: bool = True) -> bool:
    """Whether the ``LIVE_STREAM_ENABLED`` environment flag allows emission."""
    value = os.environ.get(LIVE_STREAM_FLAG)
    if value is None:
        return default
    return value.strip().lower() not in {"0", "false", "no", "off", ""}


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
        ``"transcribe"``, ``"diarize"``, ``"classify"``, ``"global"`` or ``"run"``.
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
        return json.dumps(self.to_dict(), ensure_ascii=False, separators=(",", ":"))

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


Subscriber = Callable[[LiveEvent], Any]
_CLOSE = object()


class Subscription:
    """One subscriber's bounded queue and delivery thread, with its counters."""

    def __init__(self, callback: Subscriber, name: str, maxsize: int, session_id: str) -> None:
        self.callback = callback
        self.session_id = session_id
        self.name = name
        self.delivered = 0
        self.dropped = 0
        self.errors = 0
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=maxsize)
        self._lock = threading.Lock()
        self._missed: list[int] = []  # [count, first seq, last seq] while events are being dropped
        self._thread = threading.Thread(target=self._deliver, name=f"livereview-{name}", daemon=True)
        self._thread.start()

    def offer(self, event: LiveEvent) -> None:
        """Queue ``event`` without blocking; drop it for this subscriber when full."""
        try:
            self._queue.put_nowait(event)
        except queue.Full:
            with self._lock:
                self.dropped += 1
                first_drop = self.dropped == 1
                if self._missed:
                    self._missed[0] += 1
                    self._missed[2] = event.seq
                else:
                    self._missed = [1, event.seq, event.seq]
            if first_drop:
                logger.warning(
                    "live subscriber %r cannot keep up; its events are dropped until it catches up, then summarized",
                    self.name,
                )

    def close(self, timeout: float | None = 10.0) -> None:
        """Deliver what is queued, then stop the delivery thread."""
        if not self._thread.is_alive():
            return
        # The sentinel must get in even when the queue is full: wait for room.
        self._queue.put(_CLOSE, timeout=timeout)
        self._thread.join(timeout)

    def stats(self) -> dict[str, Any]:
        return {
            "subscriber": self.name,
            "delivered": self.delivered,
            "dropped": self.dropped,
            "errors": self.errors,
            "queued": self._queue.qsize(),
        }

    def _deliver(self) -> None:
        while True:
            event = self._queue.get()
            if event is _CLOSE:
                self._report_missed()
                return
            self._call(event)
            self._report_missed()

    def _report_missed(self) -> None:
        with self._lock:
            missed, self._missed = self._missed, []
        if not missed:
            return
        count, first, last = missed
        self._call(
            LiveEvent(
                session_id=self.session_id,
                seq=last,
                kind=SUMMARY,
                timestamp=time.time(),
                message=f"{count} events dropped for subscriber {self.name!r}; resync from the session",
                data={"dropped": count, "first_dropped_seq": first, "last_dropped_seq": last},
            )
        )

    def _call(self, event: LiveEvent) -> None:
        try:
            self.callback(event)
            self.delivered += 1
        except Exception:
            self.errors += 1
            if self.errors == 1:
                logger.exception("live event subscriber %r raised; it keeps receiving events", self.name)


class EventEmitter:
    """Fan live events out to subscribers without ever blocking the caller.

    Parameters
    ----------
    session_id : str
        Stamped on every event.
    enabled : bool, optional
        Emit at all. Defaults to the ``LIVE_STREAM_ENABLED`` environment flag (on).
    start_seq : int
        The last sequence number already used (a resumed run continues after it).
    """

    def __init__(self, session_id: str, *, enabled: bool | None = None, start_seq: int = 0) -> None:
        self.session_id = session_id
        self.enabled = live_stream_enabled() if enabled is None else enabled
        self._seq = start_seq
        self._lock = threading.Lock()
        self._subscriptions: list[Subscription] = []

    @property
    def seq(self) -> int:
        """The last sequence number used."""
        return self._seq

    def subscribe(self, callback: Subscriber, *, name: str | None = None, maxsize: int = 1000) -> Subscription:
        """Call ``callback(event)`` for every later event, on a thread of its own."""
        subscription = Subscription(
            callback, name or getattr(callback, "__name__", type(callback).__name__), maxsize, self.session_id
        )
        with self._lock:
            self._subscriptions = [*self._subscriptions, subscription]
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        with self._lock:
            self._subscriptions = [s for s in self._subscriptions if s is not subscription]
        subscription.close()

    def emit(self, kind: str, **values: Any) -> LiveEvent | None:
        """Build the next event and hand it to every subscriber; ``None`` when disabled."""
        if not self.enabled:
            return None
        with self._lock:
            self._seq += 1
            event = LiveEvent(self.session_id, self._seq, kind, timestamp=time.time(), **values)
            subscriptions = self._subscriptions
        for subscription in subscriptions:
            subscription.offer(event)
        return event

    def emit_segments(self, kind: str, segments: Iterable[Segment | dict[str, Any]], **values: Any) -> list[LiveEvent]:
        """Emit ``segments`` in events of at most :data:`MAX_SEGMENTS_PER_EVENT`."""
        payloads = [SegmentPayload.from_segment(s) for s in segments]
        events = []
        for batch in _batched(payloads, MAX_SEGMENTS_PER_EVENT):
            event = self.emit(kind, segments=tuple(batch), **values)
            if event is not None:
                events.append(event)
        return events

    def stats(self) -> list[dict[str, Any]]:
        """Delivered, dropped and failed deliveries per subscriber."""
        return [s.stats() for s in self._subscriptions]

    def close(self, timeout: float | None = 10.0) -> None:
        """Deliver everything queued and stop all subscriber threads."""
        with self._lock:
            subscriptions, self._subscriptions = self._subscriptions, []
        for subscription in subscriptions:
            subscription.close(timeout)


def _batched(items: list[Any], size: int) -> Iterator[list[Any]]:
    for index in range(0, len(items), size):
        yield items[index : index + size]


class RecordingSubscriber:
    """A subscriber that keeps every event it receives, for tests and notebooks."""

    def __init__(self) -> None:
        self.events: list[LiveEvent] = []
        self._changed = threading.Condition()

    def __call__(self, event: LiveEvent) -> None:
        with self._changed:
            self.events.append(event)
            self._changed.notify_all()

    def wait_for(self, predicate: Callable[[LiveEvent], bool], timeout: float = 60.0) -> LiveEvent:
        """Block until an event matching ``predicate`` has arrived, and return it."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for event in self.events:
                    if predicate(event):
                        return event
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    msg = f"no matching live event within {timeout} s ({len(self.events)} received)"
                    raise TimeoutError(msg)
                self._changed.wait(remaining)


class JsonlEventLog:
    """A subscriber that appends every event to a JSON-lines file."""

    def __init__(self, path: os.PathLike[str] | str) -> None:
        self.path = Path(path)
        self._file = self.path.open("a", encoding="utf-8")

    def __call__(self, event: LiveEvent) -> None:
        self._file.write(event.to_json() + "\n")
        self._file.flush()

    def close(self) -> None:
        self._file.close()


def read_event_log(path: os.PathLike[str] | str) -> Iterator[LiveEvent]:
    """Lazily read events written by :class:`JsonlEventLog`, skipping a torn last line."""
    with Path(path).open(encoding="utf-8") as lines:
        for line in lines:
            if line.endswith("\n"):
                yield LiveEvent.from_json(line)
