"""The live review widget without a browser: snapshot, coalescing, patches, edits, playback payloads.

Sessions here are synthetic (segments added directly, no models), so every test runs in
about a second. Messages the widget sends are captured by replacing the widgets' ``send``.
"""

from __future__ import annotations

import importlib.resources
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import livereview
from livereview.core.events import CHUNK_COMPLETED, SEGMENTS, STAGE_STARTED, UPDATE
from livereview.core.options import RunOptions
from livereview.core.segments import CLASSIFIED, TRANSCRIBED, Segment, segment_id_for
from livereview.demo import demo_audio_path, demo_party_path
from livereview.review.run import SessionSink
from livereview.review.session import Session
from livereview.store.overrides import OverrideError
from livereview.ui.grid import FIELDS, GridRows
from livereview.ui.playback import MAX_CLIP_SECONDS, WAVEFORM_BINS, wav_bytes, waveform_peaks
from livereview.ui.review import PREVIEW_ROWS, ReviewWidget
from livereview.ui.timeline import lane_blocks

SPEAKERS = ("Dana", "Alex", "Sam", "Riley")


def make_segments(session_id: str, chunks: range, per_chunk: int, chunk_seconds: float = 20.0) -> list[Segment]:
    """Classified segments, ``per_chunk`` per chunk, speakers and labels taking turns."""
    segments = []
    for chunk in chunks:
        step = chunk_seconds / per_chunk
        for index in range(per_chunk):
            start = chunk * chunk_seconds + index * step
            segments.append(
                Segment(
                    session_id=session_id,
                    segment_id=segment_id_for(chunk, index),
                    chunk_id=chunk,
                    start=start,
                    end=start + step * 0.8,
                    text=f"line {index} of chunk {chunk}",
                    asr_confidence=0.9,
                    speaker_id=SPEAKERS[(chunk + index) % len(SPEAKERS)],
                    speaker_confidence=0.8,
                    ic_ooc="IC" if index % 3 else "OOC",
                    ic_ooc_confidence=0.7,
                    character_tag="Morgan" if index % 3 else "",
                    status=CLASSIFIED,
                )
            )
    return segments


def transcribe(session: Session, segments: list[Segment]) -> None:
    """Keep ``segments`` as transcribed, chunk by chunk, as a run does before its chunks complete."""
    sink = SessionSink(session)
    for chunk in sorted({s.chunk_id for s in segments}):
        sink.keep_transcription(chunk, [s for s in segments if s.chunk_id == chunk])


@pytest.fixture
def session(tmp_path: Path) -> Session:
    """The demo recording with 3 completed chunks of 5 synthetic segments each (no models)."""
    session = Session.create(
        demo_audio_path(), out_dir=tmp_path, session_id="synthetic", options=RunOptions(party=str(demo_party_path()))
    )
    segments = make_segments(session.session_id, range(3), 5)
    for chunk in range(3):
        record = {"chunk_id": chunk, "start": chunk * 20.0, "end": (chunk + 1) * 20.0}
        SessionSink(session).commit_chunk(record, [s for s in segments if s.chunk_id == chunk])
    yield session
    session.close()


class Sent:
    """Records what a widget sends: (content, buffers) pairs, with the time of each."""

    def __init__(self) -> None:
        self.messages: list[tuple[dict[str, Any], list[Any]]] = []
        self.times: list[float] = []
        self._lock = threading.Lock()

    def __call__(self, content: dict[str, Any], buffers: list[Any] | None = None) -> None:
        with self._lock:
            self.messages.append((content, list(buffers or [])))
            self.times.append(time.monotonic())

    def kinds(self, *kinds: str) -> list[dict[str, Any]]:
        with self._lock:
            return [content for content, _ in self.messages if content["kind"] in kinds]


def open_review(session: Session, role: str = "editor") -> tuple[ReviewWidget, Sent, Sent]:
    review = livereview.review(session, user="ana" if role != "viewer" else "vic", role=role)
    grid, playback = Sent(), Sent()
    review.grid.send = grid
    review.playback.send = playback
    review.flush()  # the session is read on the updater thread; later events are live
    return review, grid, playback


def from_browser(review: ReviewWidget, **content: Any) -> None:
    """Deliver a message as the browser would (on this, the 'main', thread)."""
    review._on_grid_message(review.grid, content, [])


def wait_until(condition: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            msg = f"condition not met within {timeout} s"
            raise TimeoutError(msg)
        time.sleep(0.01)


def settle(review: ReviewWidget, delivered: int = 0) -> None:
    """Wait for ``delivered`` live events to reach the widget, then for it to send everything."""
    wait_until(lambda: review._subscription.delivered >= delivered)
    review.flush()


def rows_of(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [dict(zip(FIELDS, values, strict=True)) for message in messages for values in message["rows"]]


def test_front_end_files_ship_with_the_package() -> None:
    static = importlib.resources.files("livereview.static")
    source = (static / "review.js").read_text(encoding="utf-8")
    assert (static / "review.css").is_file() and (static / "playback.js").is_file()
    assert "export default" in source
    # Offline and safe: no network imports, and segment text never goes through an HTML parser.
    for code in (source, (static / "playback.js").read_text(encoding="utf-8")):
        assert "http" not in code.split("//", 1)[0]
        assert "innerHTML" not in code and "insertAdjacentHTML" not in code


def test_snapshot_holds_every_row_with_corrections(session: Session) -> None:
    session.set_override("c00001-s002", user="ana", text="corrected words", confidence_flag=True)
    review, grid, _ = open_review(session)
    from_browser(review, kind="snapshot_request", view="view-1")
    settle(review)
    (snapshot,) = grid.kinds("snapshot")
    assert snapshot["view"] == "view-1" and snapshot["fields"] == list(FIELDS)
    rows = {row["id"]: row for row in rows_of([snapshot])}
    assert len(rows) == 15
    assert [row["start"] for row in rows.values()] == sorted(row["start"] for row in rows.values())
    edited = rows["c00001-s002"]
    assert edited["text"] == "corrected words" and edited["flag"] is True
    assert edited["edited"] == ["text", "confidence_flag"]
    assert rows["c00001-s001"]["edited"] == [] and rows["c00001-s001"]["flag"] is False
    # The small shared state travels as traits.
    assert review.grid.completed_chunks == [0, 1, 2]
    assert set(SPEAKERS) <= set(review.grid.speakers)
    assert review.grid.characters[:3] == ["Morgan", "Duncan", "Flint"]
    review.close()


def test_a_long_session_sends_the_rows_shown_first_then_all(session: Session) -> None:
    transcribe(session, make_segments(session.session_id, range(3, 103), 5))  # 515 segments, still running
    review, grid, _ = open_review(session)
    from_browser(review, kind="snapshot_request", view="view-1")
    settle(review)
    preview, full = grid.kinds("snapshot")
    assert preview["partial"] and preview["total"] == full["total"] == 515 and not full.get("partial")
    assert [row[0] for row in preview["rows"]] == [row[0] for row in full["rows"][-PREVIEW_ROWS:]]  # the newest
    review.close()


def test_a_view_asking_while_a_long_session_is_read_gets_its_first_rows_at_once(
    session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    transcribe(session, make_segments(session.session_id, range(3, 103), 5))  # 515 segments, still running
    reading, release = threading.Event(), threading.Event()
    reset = GridRows.reset

    def slow_reset(rows: GridRows, *args: Any) -> None:  # the updater, holding every row still to merge
        reading.set()
        release.wait(20)
        reset(rows, *args)

    monkeypatch.setattr(GridRows, "reset", slow_reset)
    review = livereview.review(session, user="ana")
    grid = Sent()
    review.grid.send = grid
    assert reading.wait(20)
    from_browser(review, kind="snapshot_request", view="view-1")
    (early,) = grid.kinds("snapshot")  # sent by this thread while the updater still reads
    assert early["view"] == "view-1" and early["partial"] and early["total"] == 515
    release.set()
    settle(review)
    first, *_, full = grid.kinds("snapshot")
    assert first is early and not full.get("partial") and full["view"] == "view-1"
    assert early["rows"] == full["rows"][-PREVIEW_ROWS:]  # the newest rows, as the full snapshot has them
    review.close()


def test_many_live_events_become_few_messages(session: Session) -> None:
    review, grid, _ = open_review(session)
    segments = make_segments(session.session_id, range(3, 53), 20)  # 1,000 new segments
    transcribe(session, segments)
    events = session.events.emit_segments(SEGMENTS, segments, stage="transcribe", status=TRANSCRIBED)
    assert len(events) == 50
    settle(review, delivered=len(events))
    appends = grid.kinds("append")
    assert 1 <= len(appends) <= 5, f"{len(events)} events were sent as {len(appends)} messages"
    appended = rows_of(appends)
    assert len(appended) == len({row["id"] for row in appended}) == 1000
    assert not grid.kinds("patch", "snapshot")
    review.close()


def test_patches_carry_changed_rows_and_appends_carry_new_ones(session: Session) -> None:
    review, grid, _ = open_review(session)
    changed = [s for s in session.segment_list() if s.chunk_id == 1][:3]
    for segment in changed:
        segment.speaker_id = "Riley"
    new = make_segments(session.session_id, range(3, 4), 2)
    transcribe(session, new)
    sent = session.events.emit_segments(UPDATE, changed, stage="diarize", chunk_id=1, status="diarized")
    sent += session.events.emit_segments(SEGMENTS, list(reversed(new)), stage="transcribe", chunk_id=3)
    sent.append(session.events.emit(CHUNK_COMPLETED, chunk_id=3, position=80.0))
    settle(review, delivered=len(sent))
    patched = rows_of(grid.kinds("patch"))
    assert {row["id"] for row in patched} == {s.segment_id for s in changed}
    assert all(row["speaker"] == "Riley" for row in patched)
    appended = rows_of(grid.kinds("append"))
    assert [row["id"] for row in appended] == ["c00003-s000", "c00003-s001"]  # in time order
    assert appended[0]["text"] == "line 0 of chunk 3" and appended[0]["chunk"] == 3
    assert review.grid.completed_chunks == [0, 1, 2, 3]
    assert review.grid.position == 80.0
    review.close()


def test_events_already_in_the_snapshot_are_not_sent_again(session: Session) -> None:
    review, _, _ = open_review(session)
    seeded = review._seeded_seq
    stale = livereview.LiveEvent(session.session_id, seeded, STAGE_STARTED, stage="run", position=999.0)
    review._queue.put(("event", stale))
    settle(review)
    assert review.grid.position < 999.0
    review.close()


def test_browser_edit_reaches_the_store_and_the_grid(session: Session) -> None:
    review, grid, _ = open_review(session)
    from_browser(review, kind="edit", request="r1", id="c00000-s001", field="text", value="Hello there", reason="typo")
    settle(review, delivered=1)
    current = session.overrides().set_index(["segment_id", "field"])
    assert current.loc[("c00000-s001", "text"), "value"] == "Hello there"
    assert current.loc[("c00000-s001", "text"), "user"] == "ana"
    assert session.override_log()["reason"].tolist() == ["typo"]
    (result,) = grid.kinds("result")
    assert result["ok"] and result["request"] == "r1" and result["batch_id"]
    (row,) = rows_of([result])
    assert row["text"] == "Hello there" and row["edited"] == ["text"]
    wait_until(lambda: any(r["id"] == "c00000-s001" for r in rows_of(grid.kinds("patch"))))
    review.close()


def test_store_errors_are_shown_in_the_widget(session: Session) -> None:
    review, grid, _ = open_review(session)
    transcribe(session, make_segments(session.session_id, range(3, 4), 1))  # chunk 3 still running
    from_browser(review, kind="edit", request="r1", id="c00000-s001", field="speaker_id", value="Nobody")
    settle(review)
    assert "unknown speaker 'Nobody'" in grid.kinds("result")[-1]["error"]
    assert review.grid.notice["level"] == "error" and "Nobody" in review.grid.notice["text"]
    from_browser(review, kind="edit", request="r2", id="c00003-s000", field="text", value="too early")
    settle(review)
    assert "not completed" in review.grid.notice["text"]
    # A new speaker is accepted when the operator says so.
    from_browser(review, kind="edit", request="r3", id="c00000-s001", field="speaker_id", value="Jo", new_speaker=True)
    settle(review)
    assert grid.kinds("result")[-1]["ok"]
    with pytest.raises(OverrideError, match="empty"):
        review.edit("c00000-s002", text="   ")
    settle(review)
    assert "empty" in review.grid.notice["text"]
    assert len(session.override_log()) == 1
    review.close()


def test_viewer_has_no_edit_rights_and_is_refused(session: Session) -> None:
    review, grid, _ = open_review(session, role="viewer")
    assert review.grid.can_edit is False and review.grid.role == "viewer"
    from_browser(review, kind="edit", request="r1", id="c00000-s001", field="text", value="sneaky")
    settle(review)
    (result,) = grid.kinds("result")
    assert not result["ok"] and result["error"].startswith("PermissionError") and "read-only" in result["error"]
    assert result["rows"][0][FIELDS.index("text")] == "line 1 of chunk 0"  # the stored value, to revert the view
    assert "read-only" in review.grid.notice["text"]
    with pytest.raises(PermissionError):
        review.edit("c00000-s001", text="sneaky")
    assert session.override_log().empty
    review.close()


def test_batch_edit_asks_for_confirmation_and_undo_is_one_message(session: Session) -> None:
    review, grid, _ = open_review(session)
    ids = ["c00000-s000", "c00000-s001", "c00000-s002"]
    from_browser(review, kind="batch", request="b1", ids=ids, field="ic_ooc", value="OOC", confirm=False)
    settle(review)
    (asked,) = grid.kinds("result")
    assert asked["needs_confirm"]  # asked in words, naming the rows; c00000-s000 is OOC already
    assert asked["message"] == (
        "Set the IC/OOC label to OOC on 3 rows (0:00.0 Dana, 0:04.0 Alex, 0:08.0 Sam)? 1 of them already has it."
    )
    assert session.override_log().empty
    from_browser(review, kind="batch", request="b2", ids=ids, field="ic_ooc", value="OOC", confirm=True)
    settle(review)
    applied = grid.kinds("result")[-1]
    assert applied["ok"] and applied["batch_id"]
    assert set(session.view().loc[ids, "ic_ooc"]) == {"OOC"}
    from_browser(review, kind="undo", request="u1")
    settle(review)
    assert grid.kinds("result")[-1]["batch_id"] == applied["batch_id"]
    assert review.grid.notice["text"] == (
        "ana undid their last change: the IC/OOC label of 2 rows (0:04.0, 0:08.0) is IC again (was OOC)."
    )
    assert session.view().loc[ids, "ic_ooc"].tolist() == ["OOC", "IC", "IC"]  # the model's values again
    review.close()


def test_brushed_range_filters_and_selects(session: Session) -> None:
    review, _, _ = open_review(session)
    review.timeline.brush.selected = np.array([21.0, 29.0])
    settle(review)
    assert review.selected_range == (21.0, 29.0)
    expected = [s.segment_id for s in session.segment_list() if s.end > 21.0 and s.start < 29.0]
    assert review.selected_segment_ids == expected and len(expected) == 3
    from_browser(review, kind="clear_range")
    settle(review)
    assert review.selected_range is None
    from_browser(review, kind="select", ids=["c00002-s004", "unknown-id"])
    settle(review)
    assert review.selected_segment_ids == ["c00002-s004"]
    review.close()


def test_playback_sends_only_the_clip_and_a_small_waveform(session: Session) -> None:
    review, _, playback = open_review(session)
    segment = session.segment_list()[6]  # chunk 1, 24.0-27.2 s
    from_browser(review, kind="play", id=segment.segment_id)
    settle(review)
    (content, buffers) = playback.messages[-1]
    assert content["kind"] == "clip" and content["id"] == segment.segment_id
    assert (content["window_start"], content["window_end"]) == (20.0, 40.0)  # the segment's chunk
    seconds = segment.end - segment.start
    assert len(buffers[0]) == pytest.approx(44 + 2 * 16_000 * seconds, abs=4)
    assert buffers[0][:4] == b"RIFF" and buffers[0][8:12] == b"WAVE"
    assert len(buffers[1]) == WAVEFORM_BINS
    recording_bytes = 2 * 16_000 * session.metadata["audio"]["duration"]
    assert len(buffers[0]) + len(buffers[1]) < recording_bytes / 20
    assert segment.text in review.playback.label
    # A view that renders later asks for the clip again.
    review._on_playback_message(review.playback, {"kind": "request"}, [])
    settle(review)
    assert playback.messages[-1][0]["id"] == segment.segment_id and len(playback.messages) == 2
    review.close()


def test_clip_payload_is_capped_for_long_segments() -> None:
    assert len(wav_bytes(np.zeros(16_000 * 2, dtype=np.float32))) == 44 + 64_000
    peaks = waveform_peaks(np.sin(np.linspace(0, 400, 50_000)).astype(np.float32))
    assert peaks.dtype == np.uint8 and peaks.shape == (WAVEFORM_BINS,) and peaks.max() == 255
    assert not waveform_peaks(np.zeros(0)).any()
    assert MAX_CLIP_SECONDS * 2 * 16_000 < 1_000_000  # a clip stays under a megabyte


def test_timeline_draws_a_four_hour_session_with_few_points() -> None:
    segments = make_segments("long", range(720), 28)  # 20,160 segments over 4 hours
    rows = [{"start": s.start, "end": s.end, "speaker": s.speaker_id, "ic_ooc": s.ic_ooc} for s in segments]
    blocks = lane_blocks(rows, 720 * 20.0, bins=1500)
    assert blocks.lanes == sorted(SPEAKERS)
    assert blocks.blocks <= len(SPEAKERS) * 1500 and blocks.blocks < len(rows) / 3
    assert sum(len(x) for x in blocks.x.values()) == 3 * blocks.blocks
    assert np.isnan(blocks.y["IC"][::3]).all()  # a NaN point starts each block's stroke
    # A short session keeps its turns apart: one block per segment here.
    short = lane_blocks(rows[:6], 30.0, bins=1500)
    assert short.blocks == 6 and short.lanes == sorted(SPEAKERS)
    assert np.allclose(short.x["OOC"][1:3], [0.0, 0.5714], atol=0.03)  # the first segment, 0-0.57 s


def test_review_of_a_directory_and_bad_roles(session: Session) -> None:
    with pytest.raises(ValueError, match="unknown role 'owner'"):
        livereview.review(session, user="ana", role="owner")
    review = livereview.review(session.directory, user="ana", role="viewer")
    assert review.session.session_id == session.session_id
    review.close()
    review = livereview.review(session, user="ana")
    assert isinstance(review, ReviewWidget) and review.grid.can_edit
    review.close()


def test_status_bar_shows_metrics_and_a_degraded_banner(session: Session) -> None:
    from livereview.live.health import clear_degraded, report_degraded

    review, _, _ = open_review(session)
    assert "events" in review.grid.metrics and "dropped" in review.grid.metrics
    assert review.grid.health == []
    report_degraded("model:test", "the classifier fell back to keywords")
    try:
        review._meta_dirty = True
        review.flush()
        assert review.grid.health == ["the classifier fell back to keywords"]
    finally:
        clear_degraded("model:test")
    review._meta_dirty = True
    review.flush()
    assert review.grid.health == []
    review.close()


def test_rerun_actions_rerun_the_selection_and_patch_only_those_rows(session: Session) -> None:
    SessionSink(session).set_status("complete")
    review, grid, _ = open_review(session)
    from_browser(review, kind="rerun", rerun="reclassify", request="x1")  # nothing selected yet
    wait_until(lambda: "nothing to reclassify" in (review.grid.notice or {}).get("text", ""))
    assert session.rerun_history().empty

    chosen = ["c00001-s000", "c00001-s001", "c00001-s002"]
    from_browser(review, kind="select", ids=chosen)
    settle(review)
    patches = len(grid.kinds("patch"))
    rerun = review.rerun("reclassify", classifier="keywords")
    assert rerun.segment_ids == chosen
    wait_until(lambda: "reclassify r0001 by ana changed 3 of 3 rows: " in review.grid.notice["text"])
    # The notice names the rows and their old and new values, as the patch's changes do.
    assert "the IC/OOC label of 0:20.0 Alex “line 0 of chunk 1” from OOC to IC" in review.grid.notice["text"]
    review.flush()
    patched = {row["id"] for row in rows_of(grid.kinds("patch")[patches:])}
    assert patched == set(chosen)
    changes = {k: v for patch in grid.kinds("patch")[patches:] for k, v in patch.get("changes", {}).items()}
    assert changes["c00001-s000"] == {
        "cause": "reclassify r0001",
        "fields": [["ic_ooc", "OOC", "IC"], ["character", "", "Morgan"]],
    }
    assert set(session.segments.loc[chosen, "classifier"]) == {"keywords-0.2"}

    # The toolbar button: the brushed range this time, on a thread of its own.
    from_browser(review, kind="select", ids=[])
    review.timeline.brush.selected = np.array([41.0, 49.0])
    settle(review)
    from_browser(review, kind="rerun", rerun="reclassify", request="x2")
    wait_until(lambda: len(session.rerun_history()) == 2, timeout=120)
    second = session.rerun("r0002")
    assert second.segment_ids == review.selected_segment_ids and second.record["parameters"]["selection"] == "ids"
    with pytest.raises(ValueError, match="unknown rerun 'retranscribe'"):
        review.rerun("retranscribe")
    review.close()


# -- the review as a daily tool: notices in words, boundaries, speakers, the pipeline's changes ---------


def test_one_row_is_corrected_without_a_confirmation_and_the_notice_says_what_changed(session: Session) -> None:
    review, grid, _ = open_review(session)
    from_browser(review, kind="batch", request="b1", ids=["c00001-s001"], field="character_tag", value="Flint")
    settle(review)
    (result,) = grid.kinds("result")
    assert result["ok"] and not result.get("needs_confirm")
    assert session.view().at["c00001-s001", "character_tag"] == "Flint"
    assert review.grid.notice["text"] == (
        "ana set the character of 0:24.0 Sam “line 1 of chunk 1” from Morgan to Flint."
    )
    # A character on a row that has none, from the grid's empty cell.
    from_browser(review, kind="edit", request="e1", id="c00001-s003", field="character_tag", value="Duncan")
    settle(review)
    assert session.view().at["c00001-s003", "character_tag"] == "Duncan"
    assert "the character of 0:32.0 Dana “line 3 of chunk 1” from none to Duncan" in review.grid.notice["text"]
    review.close()


def test_another_operators_correction_is_told_with_its_author(session: Session) -> None:
    review, _, _ = open_review(session)
    other = livereview.open_session(session.directory)
    try:
        other.set_override("c00002-s000", user="ben", speaker_id="Riley")
        session.override_feed.poll()  # what watch_overrides() does in the background
        settle(review, delivered=1)
        assert review.grid.notice["text"] == (
            "ben set the speaker of 0:40.0 Sam “line 0 of chunk 2” from Sam to Riley."
        )
    finally:
        other.close()
    review.close()


def test_split_merge_and_boundaries_from_the_grid(session: Session) -> None:
    review, grid, _ = open_review(session)
    # Split "line 2 of chunk 0" before "of".
    from_browser(review, kind="split", request="s1", id="c00000-s002", word=2)
    settle(review)
    (record,) = session.override_log().to_dict("records")
    assert (record["segment_id"], record["field"], record["value"]["word"]) == ("c00000-s002", "split", 2)
    assert 8.0 < record["value"]["time"] < 11.2
    view = session.view()
    assert "c00000-s002" not in view.index
    assert view.loc[["c00000-s002.1", "c00000-s002.2"], "text"].tolist() == ["line 2", "of chunk 0"]
    assert grid.kinds("remove")[-1]["ids"] == ["c00000-s002"]
    assert {"c00000-s002.1", "c00000-s002.2"} <= {row["id"] for row in rows_of(grid.kinds("append", "patch"))}
    assert review.grid.notice["text"].startswith("ana split 0:08.0 Sam “line 2 of chunk 0” into 0:08.0–")
    # A part's end, typed.
    end = float(view.at["c00000-s002.2", "end"]) - 0.5
    from_browser(review, kind="boundary", request="b1", id="c00000-s002.2", end=end)
    settle(review)
    assert session.view().at["c00000-s002.2", "end"] == end
    assert "set the end of" in review.grid.notice["text"]
    # Merge two neighbours of one speaker (made so here), then undo it.
    review.edit("c00001-s001", speaker_id="Alex")
    settle(review)
    from_browser(review, kind="merge", request="m1", first="c00001-s000", second="c00001-s001")
    settle(review)
    merged = session.view().loc["c00001-s000+c00001-s001"]
    assert merged["text"] == "line 0 of chunk 1 line 1 of chunk 1" and merged["speaker_id"] == "Alex"
    assert set(grid.kinds("remove")[-1]["ids"]) == {"c00001-s000", "c00001-s001"}
    assert review.grid.notice["text"].startswith("ana merged 0:20.0 Alex “line 0 of chunk 1” and 0:24.0 Alex")
    review.undo()
    settle(review)
    assert grid.kinds("remove")[-1]["ids"] == ["c00001-s000+c00001-s001"]
    assert review.grid.notice["text"].startswith("ana undid their last change: 0:20.0 Alex")
    assert review.grid.notice["text"].endswith("“line 0 of chunk 1 line 1 of…” is 2 rows again.")
    # A merge across speakers is refused, and says why.
    from_browser(review, kind="merge", request="m2", first="c00002-s000", second="c00002-s001")
    settle(review)
    assert "only segments of one speaker merge" in review.grid.notice["text"]
    review.close()


def test_speakers_found_are_listed_and_mapped_to_players(session: Session) -> None:
    segments = session.segment_list()
    for segment in segments:
        if segment.chunk_id == 2:
            segment.speaker_id = "SPEAKER_07"  # a speaker the diarization found, not a player
    SessionSink(session).revise_speakers(segments, session.speaker_chunks())
    review, _, _ = open_review(session)
    assert review.grid.players == ["Dana", "Alex", "Sam", "Riley"]  # the game master first, then the players
    stats = {row["speaker"]: row for row in review.grid.speaker_stats}
    assert stats["SPEAKER_07"]["rows"] == 5 and stats["SPEAKER_07"]["seconds"] == pytest.approx(16.0)
    assert stats["SPEAKER_07"]["sample"].startswith("c00002-")
    from_browser(review, kind="map_speaker", speaker="SPEAKER_07", player="Riley")
    settle(review)
    assert session.speaker_map == {"SPEAKER_07": "Riley"}
    assert review.grid.speaker_map == {"SPEAKER_07": "Riley"}
    assert review.grid.notice["text"] == "ana mapped speaker SPEAKER_07 to Riley."
    viewer, _, _ = open_review(session, role="viewer")
    with pytest.raises(PermissionError, match="read-only"):
        viewer.map_speaker("SPEAKER_07", "Sam")
    assert session.speaker_map == {"SPEAKER_07": "Riley"}
    viewer.close()
    review.close()


def test_rows_the_global_pass_relabels_travel_with_their_changes(session: Session) -> None:
    review, grid, _ = open_review(session)
    session.set_override("c00000-s001", user="ana", speaker_id="Sam")  # a correction the pass leaves alone
    changed = [s for s in session.segment_list() if s.segment_id in ("c00000-s000", "c00000-s001")]
    for segment in changed:
        segment.speaker_id = "Riley"
    SessionSink(session).revise_speakers(session.segment_list(), session.speaker_chunks())
    sent = session.events.emit_segments(UPDATE, changed, stage="global", status="revised")
    settle(review, delivered=len(sent) + 1)
    changes = {k: v for patch in grid.kinds("patch") for k, v in patch.get("changes", {}).items()}
    assert changes == {"c00000-s000": {"cause": "the global speaker pass", "fields": [["speaker", "Dana", "Riley"]]}}
    review.close()


def test_the_timeline_reads_hours_and_zooms_and_pans() -> None:
    from livereview.ui.timeline import Timeline, time_ticks

    values, labels = time_ticks(0.0, 4 * 3600.0, hours=True)
    assert values.tolist() == [1800.0 * i for i in range(9)]
    assert labels["3600"] == "1:00:00" and labels["0"] == "0:00:00" and labels["5400"] == "1:30:00"
    timeline = Timeline(4 * 3600.0)
    assert timeline.x_axis.tick_labels["7200"] == "2:00:00"
    rows = [{"start": 100.0 * i, "end": 100.0 * i + 60.0, "speaker": "Dana", "ic_ooc": "IC"} for i in range(144)]
    timeline.update(rows, 0.0)
    whole = timeline.blocks
    timeline.apply("zoom_in")
    timeline.apply("zoom_in")
    assert timeline.window == (5400.0, 9000.0)
    assert (timeline.x_scale.min, timeline.x_scale.max) == (5400.0, 9000.0)
    assert timeline.window_label.value == "showing 1:30:00–2:30:00 of 4:00:00"
    timeline.update(rows, 0.0)
    assert timeline.blocks == 36 and whole == 144  # binned again over the window: every turn apart
    timeline.apply("pan_right")
    assert timeline.window == (7200.0, 10800.0)
    timeline.brush.selected = np.array([7300.0, 7400.0])
    timeline.apply("zoom_range")
    assert timeline.window == (7300.0, 7400.0) and timeline.x_axis.tick_labels["7320"] == "2:02:00"
    timeline.mark_selection([{"start": 100.0, "end": 160.0, "speaker": "Dana"}])  # outside the window: pans to it
    assert timeline.window[0] <= 100.0 and timeline.window[1] >= 160.0
    assert timeline.selection_mark.x[1:].tolist() == [100.0, 160.0]
    timeline.apply("fit")
    assert timeline.window is None and (timeline.x_scale.min, timeline.x_scale.max) == (0.0, 4 * 3600.0)
    with pytest.raises(ValueError, match="unknown timeline action 'spin'"):
        timeline.apply("spin")
