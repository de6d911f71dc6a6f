"""Live events: schema round trip, batching and order, and an emitter that never blocks."""

from __future__ import annotations

import threading

import pytest
from hypothesis import given
from hypothesis import strategies as st

from livereview.core.events import EVENT_KINDS, MAX_SEGMENTS_PER_EVENT, SUMMARY, LiveEvent, SegmentPayload
from livereview.core.segments import Segment
from livereview.live.emitter import EventEmitter, RecordingSubscriber
from livereview.store.event_log import JsonlEventLog, read_event_log

floats = st.floats(allow_nan=False, allow_infinity=False, width=64)
optional_text = st.none() | st.text(max_size=30)
payloads = st.builds(
    SegmentPayload,
    segment_id=st.text(min_size=1, max_size=12),
    chunk_id=st.integers(0, 10_000),
    start=floats,
    end=floats,
    text=st.text(max_size=80),
    speaker_id=optional_text,
    ic_ooc=st.none() | st.sampled_from(["IC", "OOC", "MIXED"]),
    character_tag=optional_text,
    segment_type=optional_text,
    asr_confidence=st.none() | floats,
    speaker_confidence=st.none() | floats,
    ic_ooc_confidence=st.none() | floats,
    status=optional_text,
)
live_events = st.builds(
    LiveEvent,
    session_id=st.text(max_size=20),
    seq=st.integers(1, 2**53),
    kind=st.sampled_from(EVENT_KINDS),
    stage=optional_text,
    chunk_id=st.none() | st.integers(0, 10_000),
    timestamp=floats,
    elapsed=st.none() | floats,
    position=st.none() | floats,
    model=optional_text,
    status=optional_text,
    message=optional_text,
    segments=st.lists(payloads, max_size=MAX_SEGMENTS_PER_EVENT).map(tuple),
    data=st.dictionaries(st.text(max_size=8), st.integers() | st.text(max_size=8), max_size=4),
)


@given(live_events)
def test_json_round_trip_is_exact(event: LiveEvent) -> None:
    assert LiveEvent.from_json(event.to_json()) == event


def test_parser_rejects_unknown_kind_and_fields() -> None:
    event = LiveEvent("s", 1, "segments")
    with pytest.raises(ValueError, match="unknown live event kind 'nonsense'"):
        LiveEvent.from_dict(event.to_dict() | {"kind": "nonsense"})
    with pytest.raises(ValueError, match="unknown live event fields \\['colour'\\]"):
        LiveEvent.from_dict(event.to_dict() | {"colour": "red"})


def _segments(count: int) -> list[Segment]:
    return [Segment("s", f"c00000-s{i:03d}", 0, i, i + 0.5, f"line {i}") for i in range(count)]


def test_segments_are_batched_in_order_with_monotonic_seq() -> None:
    emitter = EventEmitter("s", enabled=True)
    recorder = RecordingSubscriber()
    emitter.subscribe(recorder)
    emitter.emit("stage_started", stage="transcribe")
    emitted = emitter.emit_segments("segments", _segments(45), stage="transcribe", chunk_id=0)
    emitter.close()
    assert [len(e.segments) for e in emitted] == [20, 20, 5]
    assert [e.seq for e in recorder.events] == [1, 2, 3, 4]
    ids = [p.segment_id for e in recorder.events for p in e.segments]
    assert ids == [s.segment_id for s in _segments(45)]


def test_raising_subscriber_does_not_stop_others_or_the_caller() -> None:
    emitter = EventEmitter("s", enabled=True)
    recorder = RecordingSubscriber()

    def broken(event: LiveEvent) -> None:
        raise RuntimeError("subscriber bug")

    failing = emitter.subscribe(broken, name="broken")
    emitter.subscribe(recorder, name="recorder")
    for _ in range(50):
        emitter.emit("update")
    emitter.close()
    assert len(recorder.events) == 50
    assert failing.errors == 50
    assert failing.delivered == 0


def test_stalled_subscriber_never_slows_emit_and_gets_a_summary() -> None:
    emitter = EventEmitter("s", enabled=True)
    release = threading.Event()
    received: list[LiveEvent] = []

    def stalled(event: LiveEvent) -> None:
        release.wait()
        received.append(event)

    subscription = emitter.subscribe(stalled, name="stalled", maxsize=10)
    fast = RecordingSubscriber()
    emitter.subscribe(fast, name="fast")
    for _ in range(1000):
        emitter.emit("update")  # returns although the stalled subscriber holds its first event
    assert not release.is_set() and subscription.delivered == 0
    release.set()
    emitter.close()
    assert len(fast.events) == 1000
    assert subscription.dropped >= 1000 - 11
    summaries = [e for e in received if e.kind == SUMMARY]
    assert len(summaries) == 1
    assert summaries[0].data["dropped"] == subscription.dropped
    assert summaries[0].data["last_dropped_seq"] == 1000


def test_disabled_emitter_emits_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LIVE_STREAM_ENABLED", "0")
    emitter = EventEmitter("s")
    recorder = RecordingSubscriber()
    emitter.subscribe(recorder)
    assert emitter.emit("update") is None
    assert emitter.emit_segments("segments", _segments(3)) == []
    emitter.close()
    assert recorder.events == []
    monkeypatch.setenv("LIVE_STREAM_ENABLED", "1")
    assert EventEmitter("s").enabled


def test_event_log_round_trip_and_torn_line(tmp_path) -> None:
    path = tmp_path / "events.jsonl"
    emitter = EventEmitter("s", enabled=True)
    log = JsonlEventLog(path)
    emitter.subscribe(log)
    emitted = [emitter.emit("update", message=f"n{i}") for i in range(5)]
    emitter.close()
    log.close()
    with path.open("a") as stream:
        stream.write('{"session_id": "s", "seq": 6, "ki')  # a write cut short by a crash
    assert list(read_event_log(path)) == emitted
