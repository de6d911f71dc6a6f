"""Operators on one recorded session: roles, confirmation and undo, seeing each other live, conflicts,
metrics and health."""

from __future__ import annotations

import asyncio
import json
import logging
import subprocess
import sys
import textwrap
import threading
from collections import Counter

import httpx
import pandas as pd
import pytest
import websockets
from live_helpers import StreamRecorder, wait_until

import livereview
from livereview.live.health import HealthBoard, clear_degraded, report_degraded
from livereview.review.run import SessionSink
from livereview.store.overrides import ConfirmationRequiredError

ANA_TOKEN = "ana-token-0123456789abc"
VIEWER_EDIT = ("--user", "vic", "--role", "viewer", "--ic-ooc", "OOC")
BO_TOKEN = "bo-token-0123456789abcd"


@pytest.fixture
def other(session):
    """A second Session object on the same directory: another notebook on the same recorded session."""
    other = livereview.open_session(session.directory)
    yield other
    other.close()


def override_updates(recorder: livereview.RecordingSubscriber) -> list[livereview.LiveEvent]:
    return [e for e in recorder.events if e.kind == "update" and e.stage == "override"]


# -- roles, confirmation, undo --------------------------------------------------------------------


def test_viewers_cannot_edit_through_any_session_method(session) -> None:
    batch = pd.DataFrame({"segment_id": ["c00000-s000"], "ic_ooc": ["OOC"]})
    with pytest.raises(PermissionError, match="read-only"):
        session.set_override("c00000-s000", user="vic", role="viewer", ic_ooc="OOC")
    with pytest.raises(PermissionError, match="read-only"):
        session.apply_overrides(batch, user="vic", role="viewer", confirm=True)
    with pytest.raises(PermissionError, match="read-only"):
        session.undo_last_batch("vic", role="viewer")
    assert session.override_log().empty
    result = subprocess.run(
        [sys.executable, "-m", "livereview", "override", str(session.directory), "c00000-s000", *VIEWER_EDIT],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2 and "read-only" in result.stderr


def test_a_batch_needs_confirmation_and_the_last_batch_can_be_undone(session) -> None:
    recorder = livereview.RecordingSubscriber()
    session.events.subscribe(recorder)
    batch = pd.DataFrame({"segment_id": ["c00000-s000", "c00000-s001"], "ic_ooc": ["OOC", "OOC"]})
    with pytest.raises(ConfirmationRequiredError, match="would set 2 fields on 2 segments"):
        session.apply_overrides(batch, user="ana")
    assert session.override_log().empty
    batch_id = session.apply_overrides(batch, user="ana", confirm=True)
    assert session.view().loc[["c00000-s000", "c00000-s001"], "ic_ooc"].tolist() == ["OOC", "OOC"]
    assert session.undo_last_batch("ana") == batch_id
    assert session.view().loc[["c00000-s000", "c00000-s001"], "ic_ooc"].tolist() == ["IC", "IC"]
    assert session.undo_last_batch("ana") is None
    recorder.wait_for(lambda e: e.data.get("op") == "revert", timeout=10)
    updates = override_updates(recorder)
    assert [(e.data["op"], [s.ic_ooc for s in e.segments]) for e in updates] == [
        ("set", ["OOC", "OOC"]),
        ("revert", ["IC", "IC"]),
    ]
    assert session.metrics()["overrides"] == {
        "records": 4,
        "sets": 2,
        "reverts": 2,
        "batches": 2,
        "users": 1,
        "in_effect": 0,
        "conflicts": 0,
    }


# -- several operators ----------------------------------------------------------------------------


def test_two_sessions_in_one_process_see_each_others_overrides_live(session, other) -> None:
    recorder = livereview.RecordingSubscriber()
    session.events.subscribe(recorder)
    session.watch_overrides(interval=0.05)
    other.set_override("c00000-s002", user="bo", text="said by bo", reason="typo")
    event = recorder.wait_for(lambda e: e.kind == "update" and e.stage == "override", timeout=10)
    assert event.data["user"] == "bo"
    assert [(s.segment_id, s.text) for s in event.segments] == [("c00000-s002", "said by bo")]
    assert session.view().loc["c00000-s002", "text"] == "said by bo"


def test_an_editor_in_another_process_is_seen_live(session) -> None:
    recorder = livereview.RecordingSubscriber()
    session.events.subscribe(recorder)
    session.watch_overrides(interval=0.05)
    script = f"""
        import livereview
        other = livereview.open_session({str(session.directory)!r})
        other.set_override("c00000-s004", user="cy", ic_ooc="OOC")
        other.close()
    """
    command = [sys.executable, "-c", textwrap.dedent(script)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    event = recorder.wait_for(lambda e: e.kind == "update" and e.data.get("user") == "cy", timeout=10)
    assert [(s.segment_id, s.ic_ooc) for s in event.segments] == [("c00000-s004", "OOC")]


def test_last_write_wins_and_the_earlier_writer_is_told(session, other) -> None:
    mine = livereview.RecordingSubscriber()
    session.events.subscribe(mine)
    session.watch_overrides(interval=0.05)
    session.set_override("c00000-s001", user="ana", speaker_id="SPEAKER_00")
    other.set_override("c00000-s001", user="bo", speaker_id="SPEAKER_01")
    told = mine.wait_for(lambda e: e.kind == "update" and e.data.get("user") == "bo", timeout=10)
    assert told.data["superseded_by"] == "bo"
    assert told.data["conflicts"] == [
        {
            "segment_id": "c00000-s001",
            "field": "speaker_id",
            "value": "SPEAKER_01",
            "superseded_user": "ana",
            "superseded_value": "SPEAKER_00",
            "superseded_seq": 1,
        }
    ]
    assert session.view().loc["c00000-s001", "speaker_id"] == other.view().loc["c00000-s001", "speaker_id"]
    assert session.view().loc["c00000-s001", "speaker_id"] == "SPEAKER_01"
    own = [e for e in override_updates(mine) if e.data["user"] == "ana"]
    assert "conflicts" not in own[0].data  # nobody was overwritten by the first write
    assert session.metrics()["overrides"]["conflicts"] == 1


def test_every_batch_is_announced_exactly_once(session, other) -> None:
    recorder = livereview.RecordingSubscriber()
    session.events.subscribe(recorder)
    session.watch_overrides(interval=0.005)  # races the announcements of this session's own writes

    def write(writer: livereview.Session, user: str) -> None:
        for i in range(15):
            writer.set_override(f"c00000-s00{i % 6}", user=user, text=f"{user} {i}")

    threads = [threading.Thread(target=write, args=pair) for pair in ((session, "ana"), (other, "bo"))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    log = session.override_log()
    wait_until(lambda: len(override_updates(recorder)) >= log["batch_id"].nunique(), timeout=10, what="all announced")
    announced = Counter(e.data["batch_id"] for e in override_updates(recorder))
    assert set(announced) == set(log["batch_id"]) and set(announced.values()) == {1}
    ordered = [e.data["batch_id"] for e in override_updates(recorder)]
    assert ordered == list(dict.fromkeys(log.sort_values("seq")["batch_id"]))  # in log order
    assert session.view()["text"].tolist() == other.view()["text"].tolist()


def test_editors_on_the_server_see_each_others_overrides_live(session, other, tmp_path) -> None:
    tokens = tmp_path / "tokens.txt"
    tokens.write_text(f"{ANA_TOKEN} ana editor\n{BO_TOKEN} bo editor\n")

    def seen_cy(message: dict) -> bool:
        return message.get("data", {}).get("user") == "cy"

    with livereview.serve(session, port=0, token_file=tokens, watch_interval=0.05) as handle:
        streams = [StreamRecorder(f"{handle.ws_url}?token={token}", "ws", seen_cy) for token in (ANA_TOKEN, BO_TOKEN)]
        for token in (ANA_TOKEN, BO_TOKEN):
            response = httpx.post(
                f"{handle.url}/overrides",
                json={"segment_id": "c00000-s003", "fields": {"character_tag": f"tag-{token[:2]}"}},
                headers={"Authorization": f"Bearer {token}"},
            )
            assert response.status_code == 200, response.text
        other.set_override("c00000-s005", user="cy", confidence_flag=True)  # a third operator, off the server
        received = [stream.join(30) for stream in streams]
    for messages in received:
        updates = [m for m in messages if m["kind"] == "update" and m["stage"] == "override"]
        assert [m["data"]["user"] for m in updates] == ["ana", "bo", "cy"]
        assert updates[1]["data"]["conflicts"][0]["superseded_user"] == "ana"
        assert updates[1]["segments"][0]["character_tag"] == "tag-bo"
    assert session.view().loc["c00000-s003", "character_tag"] == "tag-bo"


def test_a_server_post_and_a_notebook_edit_go_through_the_same_store(session, other) -> None:
    with livereview.serve(session, port=0) as handle:
        body = {"segment_id": "c00000-s000", "fields": {"speaker_id": "Dana"}, "user": "ana"}
        response = httpx.post(f"{handle.url}/overrides", json=body)
        assert response.status_code == 422 and "unknown speaker 'Dana'" in response.json()["error"]
        response = httpx.post(f"{handle.url}/overrides", json=body | {"allow_new_speaker": True})
        assert response.status_code == 200
    assert other.override_log()[["user", "field", "value"]].values.tolist() == [["ana", "speaker_id", "Dana"]]


def test_websocket_edits_are_refused_for_a_viewer_everywhere(session, tmp_path) -> None:
    tokens = tmp_path / "tokens.txt"
    tokens.write_text(f"{ANA_TOKEN} vic viewer\n")
    with livereview.serve(session, port=0, token_file=tokens) as handle:
        headers = {"Authorization": f"Bearer {ANA_TOKEN}"}
        for path, body in (
            ("/overrides", {"segment_id": "c00000-s000", "fields": {"ic_ooc": "OOC"}}),
            ("/overrides", {"rows": [{"segment_id": "c00000-s000", "ic_ooc": "OOC"}], "confirm": True}),
            ("/overrides/undo", {}),
        ):
            assert httpx.post(f"{handle.url}{path}", json=body, headers=headers).status_code == 403

        async def read_one() -> str:
            async with websockets.connect(f"{handle.ws_url}?token={ANA_TOKEN}") as socket:
                return json.loads(await asyncio.wait_for(socket.recv(), 30))["kind"]

        assert asyncio.run(read_one()) == "snapshot"  # viewers still follow the session
    assert session.override_log().empty


# -- metrics and health ---------------------------------------------------------------------------


def test_metrics_as_dict_and_frame(session) -> None:
    session.set_override("c00000-s000", user="ana", text="hello")
    session.events.emit("stage_started", stage="rerun", data={"start": 0.0, "end": 4.0})
    metrics = session.metrics()
    assert metrics["status"] == "complete" and metrics["segments"] == 6
    assert metrics["events"]["emitted"] == session.events.seq == 2
    wait_until(lambda: session.metrics()["events"]["logged"] == 2, what="event log written")
    assert session.metrics()["reruns"] == 1
    assert metrics["overrides"]["records"] == 1 and metrics["overrides"]["in_effect"] == 1
    json.dumps(metrics)  # JSON-ready, as /metrics serves it
    frame = session.metrics_frame()
    assert list(frame.columns) == ["metric", "scope", "value"]
    values = frame.set_index(["metric", "scope"])["value"]
    assert values["overrides_records", "session"] == 1
    assert values["delivered", "subscriber:event-log"] >= 1


def test_metrics_follow_a_run_live(session) -> None:
    events = session.events
    events.emit("stage_started", stage="run", position=0.0)
    events.emit("stage_completed", stage="transcribe", chunk_id=0, elapsed=2.0, position=10.0)
    events.emit("stage_completed", stage="diarize", chunk_id=0, elapsed=5.0, position=10.0)
    wait_until(lambda: session.metrics()["events"]["logged"] == 3, what="event log written")
    running = session.metrics()["events"]["last_run"]
    assert running["running"] and running["audio_seconds"] == 10.0
    assert running["stage_seconds"] == {"transcribe": 2.0, "diarize": 5.0}
    assert running["real_time_factors"] == {"transcribe": 0.2, "diarize": 0.5}
    events.emit("summary", stage="run", status="complete", position=30.0)
    events.emit("update", stage="override")  # after the run: not part of it
    wait_until(lambda: session.metrics()["events"]["logged"] == 5, what="event log written")
    done = session.metrics()["events"]["last_run"]
    assert not done["running"] and done["events"] == 4 and done["audio_seconds"] == 30.0
    frame = session.metrics_frame().set_index(["metric", "scope"])["value"]
    assert frame["live_stage_seconds", "diarize"] == 5.0


def test_health_lists_degraded_conditions_and_logs_banners(session, caplog) -> None:
    assert session.health() == []
    with caplog.at_level(logging.WARNING, logger="livereview.live.health"):
        report_degraded("model:classifier", "classifier model missing; using the keyword classifier")
        session.monitor.health.report("live-server", "live channel down: test")
        session.monitor.health.report("live-server", "live channel down: test")  # logged once
        SessionSink(session).set_status("failed", error="RuntimeError: boom")
        health = {c["key"]: c for c in session.health()}
        clear_degraded("model:classifier")
        session.monitor.health.clear("live-server")
    assert set(health) == {"model:classifier", "live-server", "run"}
    assert health["model:classifier"]["scope"] == "process"
    assert "RuntimeError: boom" in health["run"]["message"]
    assert caplog.text.count("DEGRADED [") == 2 and caplog.text.count("RECOVERED [") == 2
    assert [c["key"] for c in session.health()] == ["run"]


def test_health_board_keeps_one_condition_per_key() -> None:
    board = HealthBoard("game")
    board.report("a", "first text")
    board.report("a", "second text")
    assert [(c.key, c.message) for c in board.conditions()] == [("a", "second text")]
    board.clear("a")
    board.clear("a")
    assert board.conditions() == []
