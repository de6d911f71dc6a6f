"""The live event emitter: numbers events and fans them out without ever blocking the caller.

The pipeline, reruns and corrections call :meth:`EventEmitter.emit`; every subscriber
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

import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Protocol

from livereview.core.events import MAX_SEGMENTS_PER_EVENT, SUMMARY, LiveEvent, SegmentPayload
from livereview.core.segments import Segment

logger = logging.getLogger(__name__)

#: Environment flag that turns live emission off when set to 0/false/no/off.
LIVE_STREAM_FLAG = "LIVE_STREAM_ENABLED"


def live_stream_enabled(default: bool = True) -> bool:
    """Whether the ``LIVE_STREAM_ENABLED`` environment flag allows emission."""
    value = os.environ.get(LIVE_STREAM_FLAG)
    if value is None:
        return default
    return value.strip().lower() not in {"0", "false", "no", "off", ""}


Subscriber = Callable[[LiveEvent], Any]
_CLOSE = object()


class Subscription:
    """One subscriber's bounded queue and delivery thread, with its counters."""

    def __init__(self, callback: Subscriber, name: str, maxsize: int, session_id: str, *, relayed: bool = True) -> None:
        self.callback = callback
        self.session_id = session_id
        self.name = name
        #: Whether it also gets events relayed from another process (see :meth:`EventEmitter.relay`).
        self.relayed = relayed
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


class Sequence(Protocol):
    """Hands out event sequence numbers: ``next()`` takes one, ``current()`` tells the last taken."""

    def next(self) -> int: ...

    def current(self) -> int: ...


class Counter:
    """Sequence numbers counted in memory, from ``start`` + 1."""

    def __init__(self, start: int = 0) -> None:
        self._last = start

    def next(self) -> int:
        self._last += 1
        return self._last

    def current(self) -> int:
        return self._last


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
    sequence : Sequence, optional
        Where sequence numbers come from when several emitters share one stream (the
        processes writing one session directory); a counter from ``start_seq`` otherwise.
    """

    def __init__(
        self,
        session_id: str,
        *,
        enabled: bool | None = None,
        start_seq: int = 0,
        sequence: Sequence | None = None,
    ) -> None:
        self.session_id = session_id
        self.enabled = live_stream_enabled() if enabled is None else enabled
        self._sequence = sequence or Counter(start_seq)
        self._lock = threading.Lock()
        self._subscriptions: list[Subscription] = []

    @property
    def seq(self) -> int:
        """The last sequence number used (by any emitter sharing the sequence)."""
        return self._sequence.current()

    def subscribe(
        self, callback: Subscriber, *, name: str | None = None, maxsize: int = 1000, relayed: bool = True
    ) -> Subscription:
        """Call ``callback(event)`` for every later event, on a thread of its own.

        ``relayed=False`` leaves out the events relayed from another process (the event
        log, which that process writes itself).
        """
        subscription = Subscription(
            callback,
            name or getattr(callback, "__name__", type(callback).__name__),
            maxsize,
            self.session_id,
            relayed=relayed,
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
            event = LiveEvent(self.session_id, self._sequence.next(), kind, timestamp=time.time(), **values)
            subscriptions = self._subscriptions
        for subscription in subscriptions:
            subscription.offer(event)
        return event

    def relay(self, event: LiveEvent) -> None:
        """Hand subscribers an event another process emitted (already numbered and logged there)."""
        for subscription in self._subscriptions:
            if subscription.relayed:
                subscription.offer(event)

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
