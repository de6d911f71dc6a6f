"""The live server on 127.0.0.1: WebSocket and SSE streams, resume, snapshot, tokens, backpressure, faults."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import signal
import subprocess
import sys
import threading

import httpx
import pandas as pd
import pytest
import websockets
from live_helpers import StreamRecorder, emit_many, sse_messages, sse_read, wait_until, ws_read

import livereview
from livereview.core.events import SUMMARY, LiveEvent
from livereview.server import SNAPSHOT, is_loopback, load_tokens

VIEWER_TOKEN = "viewer-token-0123456789"
EDITOR_TOKEN = "editor-token-0123456789"
OTHER_EDITOR_TOKEN = "editor-token-abcdefghij"


@pytest.fixture
def server(session):
    handle = livereview.serve(session, port=0)
    yield handle
    handle.stop()


@pytest.fixture
def token_file(tmp_path):
    path = tmp_path / "tokens.txt"
    path.write_text(
        f"# token user role\n{VIEWER_TOKEN} vic viewer\n{EDITOR_TOKEN} ana editor\n{OTHER_EDITOR_TOKEN} bo editor\n"
    )
    return path


def event_lines(session) -> dict[int, str]:
    """seq -> the event's JSON line as written to events.jsonl."""
    return {json.loads(line)["seq"]: line for line in session.paths.events.read_text().splitlines()}


# -- snapshot and streams -----------------------------------------------------------------------


def test_snapshot_endpoint_serves_the_merged_view(session, server) -> None:
    session.set_override("c00000-s001", user="ana", ic_ooc="OOC")
    wait_until(lambda: server.server.hub.last_seq == session.events.seq, what="server caught up")
    snapshot = httpx.get(f"{server.url}/snapshot").json()
    assert snapshot["kind"] == SNAPSHOT
    assert snapshot["seq"] == session.events.seq
    assert snapshot["status"] == "complete"
    rows = pd.DataFrame(snapshot["segments"]).set_index("segment_id")
    view = session.view()
    assert list(rows.index) == list(view.index)
    assert rows.loc["c00000-s001", "ic_ooc"] == "OOC"
    assert rows.loc["c00000-s001", "overridden"] == ["ic_ooc"]
    assert "words" not in rows.columns
    index = httpx.get(f"{server.url}/").json()
    assert index["session_id"] == session.session_id and index["seq"] == snapshot["seq"]


def test_websocket_sends_a_snapshot_then_live_events_in_the_emitter_schema(session, server) -> None:
    async def scenario() -> list[dict]:
        async with websockets.connect(server.ws_url) as socket:
            first = json.loads(await asyncio.wait_for(socket.recv(), 30))
            await asyncio.to_thread(emit_many, session, 5)
            return [first, *[json.loads(await asyncio.wait_for(socket.recv(), 30)) for _ in range(5)]]

    snapshot, *live = asyncio.run(scenario())
    assert snapshot["kind"] == SNAPSHOT and snapshot["reason"] == "initial"
    assert [m["seq"] for m in live] == list(range(snapshot["seq"] + 1, snapshot["seq"] + 6))
    lines = event_lines(session)
    for message in live:
        event = LiveEvent.from_dict(message)
        assert event.to_json() == lines[event.seq]  # byte for byte what the in-process emitter wrote


def test_websocket_resumes_after_since_without_gaps_or_duplicates(session, server) -> None:
    start = session.events.seq
    emit_many(session, 4)
    first = asyncio.run(ws_read(f"{server.ws_url}?since={start}", 2))
    seen = first[-1]["seq"]
    emit_many(session, 6)  # while the client is away
    wait_until(lambda: server.server.hub.last_seq == session.events.seq, what="server caught up")

    async def resume() -> list[dict]:
        async with websockets.connect(f"{server.ws_url}?since={seen}") as socket:
            backlog = [json.loads(await asyncio.wait_for(socket.recv(), 30)) for _ in range(8)]
            await asyncio.to_thread(emit_many, session, 2)
            return backlog + [json.loads(await asyncio.wait_for(socket.recv(), 30)) for _ in range(2)]

    rest = asyncio.run(resume())
    seqs = [m["seq"] for m in first + rest]
    assert seqs == list(range(start + 1, start + 13))
    assert all(m["kind"] != SNAPSHOT for m in first + rest)
    clients = server.stats()["clients"]
    assert {c["resumed_from"] for c in clients} == {"ring"}


def test_sse_resumes_with_last_event_id(session, server) -> None:
    start = session.events.seq
    emit_many(session, 5)
    wait_until(lambda: server.server.hub.last_seq == session.events.seq, what="server caught up")
    first = sse_read(f"{server.url}/events", 3, headers={"Last-Event-ID": str(start)})
    assert [event_id for event_id, _ in first] == [start + 1, start + 2, start + 3]
    last_id = first[-1][0]
    emit_many(session, 3)
    wait_until(lambda: server.server.hub.last_seq == session.events.seq, what="server caught up")
    rest = sse_read(f"{server.url}/events", 5, headers={"Last-Event-ID": str(last_id)})
    assert [event_id for event_id, _ in rest] == list(range(start + 4, start + 9))
    assert [m["seq"] for _, m in first + rest] == list(range(start + 1, start + 9))
    lines = event_lines(session)
    assert all(LiveEvent.from_dict(m).to_json() == lines[m["seq"]] for _, m in first + rest)


def test_resume_reads_the_event_log_once_the_ring_has_moved_on(session) -> None:
    start = session.events.seq
    with livereview.serve(session, port=0, ring_size=5) as handle:
        emit_many(session, 30)
        wait_until(lambda: handle.server.hub.last_seq == session.events.seq, what="server caught up")
        assert handle.stats()["ring"] == {"events": 5, "first_seq": start + 26}
        messages = asyncio.run(ws_read(f"{handle.ws_url}?since={start + 2}", 28))
        sse = sse_read(f"{handle.url}/events?since={start + 2}", 28)
        starts = handle.stats()["starts"]
    assert [m["seq"] for m in messages] == list(range(start + 3, start + 31))
    assert [m["seq"] for _, m in sse] == list(range(start + 3, start + 31))
    assert starts == {"file": 2}


def test_a_position_no_longer_retained_gets_a_snapshot(session) -> None:
    start = session.events.seq
    with livereview.serve(session, port=0, ring_size=5) as handle:
        emit_many(session, 30)
        wait_until(lambda: handle.server.hub.last_seq == session.events.seq, what="server caught up")
        wait_until(lambda: max(event_lines(session)) == session.events.seq, what="event log written")
        lines = session.paths.events.read_text().splitlines(keepends=True)
        session.paths.events.write_text("".join(lines[-10:]))  # older events are gone
        expired = asyncio.run(ws_read(f"{handle.ws_url}?since={start + 2}", 1))[0]
        ahead = asyncio.run(ws_read(f"{handle.ws_url}?since={start + 999}", 1))[0]
    assert expired["kind"] == SNAPSHOT and "no longer retained" in expired["reason"]
    assert expired["seq"] == start + 30
    assert ahead["kind"] == SNAPSHOT and "ahead of the stream" in ahead["reason"]


# -- access -------------------------------------------------------------------------------------


def test_tokens_carry_roles_viewers_read_editors_write(session, token_file) -> None:
    viewer = {"Authorization": f"Bearer {VIEWER_TOKEN}"}
    editor = {"Authorization": f"Bearer {EDITOR_TOKEN}"}
    with livereview.serve(session, port=0, token_file=token_file) as handle:
        url = handle.url
        assert httpx.get(f"{url}/snapshot").status_code == 401
        assert httpx.get(f"{url}/snapshot", headers={"Authorization": "Bearer nope"}).status_code == 401
        assert httpx.get(f"{url}/snapshot", headers=viewer).status_code == 200
        assert httpx.get(f"{url}/snapshot?token={VIEWER_TOKEN}").status_code == 200
        body = {"segment_id": "c00000-s002", "fields": {"speaker_id": "SPEAKER_01"}, "reason": "voice"}
        refused = httpx.post(f"{url}/overrides", json=body, headers=viewer)
        assert refused.status_code == 403 and "read-only" in refused.json()["error"]
        accepted = httpx.post(f"{url}/overrides", json=body, headers=editor)
        assert accepted.status_code == 200
        assert accepted.json()["records"][0]["user"] == "ana"  # the token says who
        invalid = httpx.post(
            f"{url}/overrides", json={"segment_id": "c00000-s002", "fields": {"ic_ooc": "MAYBE"}}, headers=editor
        )
        assert invalid.status_code == 422 and "'MAYBE' is not one of" in invalid.json()["error"]
        unknown = httpx.post(f"{url}/overrides", json={"segment_id": "nope", "fields": {"text": "x"}}, headers=editor)
        assert unknown.status_code == 422 and "unknown segment" in unknown.json()["error"]
        batch = {"rows": [{"segment_id": f"c00000-s00{i}", "ic_ooc": "OOC"} for i in (0, 1)]}
        unconfirmed = httpx.post(f"{url}/overrides", json=batch, headers=editor)
        assert unconfirmed.status_code == 422 and unconfirmed.json()["confirmation_required"] is True
        assert "pass confirm=True" in unconfirmed.json()["error"]
        confirmed = httpx.post(f"{url}/overrides", json=batch | {"confirm": True}, headers=editor)
        assert confirmed.status_code == 200
        assert httpx.post(f"{url}/overrides/undo", json={}, headers=viewer).status_code == 403
        undone = httpx.post(f"{url}/overrides/undo", json={}, headers=editor)
        assert undone.json() == {"batch_id": confirmed.json()["batch_id"]}
        mismatch = httpx.post(f"{url}/overrides", json=body | {"user": "mallory"}, headers=editor)
        assert mismatch.status_code == 422 and "token belongs to 'ana'" in mismatch.json()["error"]
        current = httpx.get(f"{url}/overrides", headers=viewer).json()
        assert [(r["segment_id"], r["field"], r["user"]) for r in current] == [("c00000-s002", "speaker_id", "ana")]

        async def websocket_access() -> tuple[int, str]:
            with pytest.raises(websockets.InvalidStatus) as refused_socket:
                await websockets.connect(handle.ws_url)
            async with websockets.connect(f"{handle.ws_url}?token={VIEWER_TOKEN}") as socket:
                first = json.loads(await asyncio.wait_for(socket.recv(), 30))
            return refused_socket.value.response.status_code, first["kind"]

        assert asyncio.run(websocket_access()) == (401, SNAPSHOT)
    assert session.view().loc["c00000-s002", "speaker_id"] == "SPEAKER_01"
    assert list(session.override_log()["user"].unique()) == ["ana"]


def test_loopback_without_tokens_needs_the_operator_named(session, server) -> None:
    body = {"segment_id": "c00000-s000", "fields": {"text": "corrected"}}
    nameless = httpx.post(f"{server.url}/overrides", json=body)
    assert nameless.status_code == 422 and '"user"' in nameless.json()["error"]
    assert httpx.post(f"{server.url}/overrides", json=body | {"user": "ana"}).status_code == 200
    assert httpx.post(f"{server.url}/overrides", content=b"{not json").status_code == 400


def test_clients_beyond_the_limit_are_refused(session) -> None:
    with livereview.serve(session, port=0, max_clients=1) as handle:

        async def two_clients() -> int:
            async with websockets.connect(handle.ws_url) as first:
                await asyncio.wait_for(first.recv(), 30)
                with pytest.raises(websockets.InvalidStatus) as refused:
                    await websockets.connect(handle.ws_url)
                return refused.value.response.status_code

        assert asyncio.run(two_clients()) == 503
        assert httpx.get(f"{handle.url}/snapshot").status_code == 200  # one-off requests still served


def test_listening_beyond_loopback_requires_a_token(session, tmp_path) -> None:
    with pytest.raises(PermissionError, match=r"refusing to listen on '0\.0\.0\.0' without tokens"):
        livereview.serve(session, host="0.0.0.0", port=0)
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.4") and not is_loopback("example.org")
    result = subprocess.run(
        [sys.executable, "-m", "livereview", "serve", str(session.directory), "--host", "0.0.0.0", "--port", "0"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2 and "without tokens" in result.stderr


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("short ana editor\n", "under 16"),
        (f"{EDITOR_TOKEN} ana boss\n", "unknown role 'boss'"),
        (f"{EDITOR_TOKEN} ana\n", "has 2 fields"),
        (f"{EDITOR_TOKEN} ana editor\n{EDITOR_TOKEN} bo viewer\n", "repeats a token"),
        ("# nothing\n", "holds no token"),
    ],
)
def test_token_file_errors_name_the_line_and_the_fix(tmp_path, text, message) -> None:
    path = tmp_path / "tokens.txt"
    path.write_text(text)
    with pytest.raises(ValueError, match=message):
        load_tokens(path)


# -- backpressure and faults --------------------------------------------------------------------


def test_a_client_that_does_not_read_gets_a_summary_and_resyncs_while_others_get_everything(session) -> None:
    count, pad = 400, 64 * 1024
    with livereview.serve(session, port=0, queue_size=16, ring_size=50) as handle:
        start = session.events.seq

        async def scenario() -> tuple[list[dict], list[dict], list[dict]]:
            reader = await websockets.connect(f"{handle.ws_url}?since={start}", max_size=None)
            stalled = await websockets.connect(f"{handle.ws_url}?since={start}", max_size=None, max_queue=4)
            async with (
                httpx.AsyncClient(timeout=httpx.Timeout(60)) as http,
                http.stream("GET", f"{handle.url}/events?since={start}") as stalled_sse,
            ):
                received: list[dict] = []

                def paced_flood() -> None:  # never more than 8 events ahead of the reader
                    for i in range(count):
                        wait_until(lambda i=i: len(received) >= i - 8, what="reader progress")
                        emit_many(session, 1, pad=pad)

                flood = asyncio.create_task(asyncio.to_thread(paced_flood))
                while len(received) < count:
                    received.append(json.loads(await asyncio.wait_for(reader.recv(), 60)))
                await flood
                stats = {c["client"]: c for c in handle.stats()["clients"]}
                assert stats["ws-1"]["dropped"] == 0
                assert stats["ws-2"]["dropped"] > 0 and stats["sse-3"]["dropped"] > 0
                assert "live-clients" in {c["key"] for c in session.health()}  # the banner
                await asyncio.to_thread(emit_many, session, 3)  # after the stall
                late: list[dict] = []
                while not late or not _reached(late[-1], start + count + 3):
                    late.append(json.loads(await asyncio.wait_for(stalled.recv(), 60)))
                sse: list[dict] = []
                async for line_message in _aiter_sse(stalled_sse):
                    sse.append(line_message)
                    if _reached(line_message, start + count + 3):
                        break
            await reader.close()
            await stalled.close()
            return received, late, sse

        received, late, sse = asyncio.run(scenario())
        wait_until(lambda: "live-clients" not in {c["key"] for c in session.health()}, what="banner cleared")
        stats = {c["client"]: c for c in handle.stats()["clients"]}
        emitter = {s["subscriber"]: s for s in session.events.stats()}
    assert [m["seq"] for m in received] == list(range(start + 1, start + count + 1))
    for messages, name in ((late, "ws-2"), (sse, "sse-3")):
        # events in order; each stall (one or more, as the transport's buffers let the queue drain) is a
        # summary of exactly what was dropped, then a snapshot, then the events after it
        summaries, expected = 0, start + 1
        for previous, message in itertools.pairwise([None, *messages]):
            if message["kind"] == SUMMARY:
                assert message["data"]["client"] == name and message["data"]["first_dropped_seq"] == expected
                summaries += 1
                dropped = message["data"]["dropped"]
                assert dropped == message["data"]["last_dropped_seq"] - expected + 1 > 0
            elif message["kind"] == SNAPSHOT:
                assert previous is not None and previous["kind"] == SUMMARY and "dropped" in message["reason"]
                assert message["seq"] >= previous["data"]["last_dropped_seq"]
                expected = message["seq"] + 1
            else:
                assert message["seq"] == expected  # nothing lost outside a summarised stall
                expected += 1
        assert expected == start + count + 4  # the three events after the stall arrived
        assert sum(m["data"]["dropped"] for m in messages if m["kind"] == SUMMARY) == stats[name]["dropped"] > 0
        assert stats[name]["resyncs"] == summaries >= 1
    assert emitter["live-server"]["dropped"] == 0  # the pipeline side never waited or dropped


def _reached(message: dict, seq: int) -> bool:
    """Whether a stream is known to be complete up to ``seq`` (a summary's seq is a dropped one)."""
    return message["kind"] != SUMMARY and message["seq"] >= seq


async def _aiter_sse(response: httpx.Response):
    lines = []
    async for line in response.aiter_lines():
        lines.append(line)
        if line == "":
            for _, message in sse_messages(lines):
                yield message
            lines = []


def test_raising_and_stalled_subscribers_do_not_disturb_clients(session, server, caplog) -> None:
    release = threading.Event()

    def raises(event: LiveEvent) -> None:
        raise RuntimeError("subscriber bug")

    session.events.subscribe(raises, name="buggy")
    session.events.subscribe(lambda event: release.wait(30), name="stalled", maxsize=2)
    start = session.events.seq
    with caplog.at_level("WARNING"):
        emit_many(session, 20)
        messages = asyncio.run(ws_read(f"{server.ws_url}?since={start}", 20))
    assert [m["seq"] for m in messages] == list(range(start + 1, start + 21))
    health = {c["key"]: c["message"] for c in session.health()}
    assert "subscriber:stalled" in health and "could not keep up" in health["subscriber:stalled"]
    assert "subscriber-errors:buggy" in health
    assert "live subscriber 'stalled' cannot keep up" in caplog.text
    release.set()
    wait_until(lambda: {s["subscriber"]: s for s in session.events.stats()}["buggy"]["errors"] == 20)
    frame = session.metrics_frame().set_index(["metric", "scope"])["value"]
    assert frame["errors", "subscriber:buggy"] == 20
    assert frame["dropped", "subscriber:stalled"] > 0
    assert frame["dropped", "subscriber:live-server"] == 0


@pytest.mark.parametrize("transport", ["ws", "sse"])
def test_a_client_dropped_mid_stream_is_detached_and_others_continue(session, server, transport) -> None:
    start = session.events.seq
    watcher = StreamRecorder(f"{server.ws_url}?since={start}", "ws", lambda m: m["seq"] == start + 40)

    async def drop_midway() -> None:
        if transport == "ws":
            socket = await websockets.connect(f"{server.ws_url}?since={start}")
            await asyncio.wait_for(socket.recv(), 30)
            socket.transport.abort()  # no close handshake: the TCP connection just dies
        else:
            reader, writer = await asyncio.open_connection(server.host, server.port)
            writer.write(f"GET /events?since={start} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            await writer.drain()
            await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)
            writer.transport.abort()

    emit_many(session, 10)
    asyncio.run(drop_midway())
    emit_many(session, 30, pad=2048)
    received = watcher.join(60)
    assert [m["seq"] for m in received] == list(range(start + 1, start + 41))
    wait_until(lambda: server.stats()["clients_connected"] == 0, what="dropped client detached")
    assert server.running


def test_a_server_whose_loop_dies_is_reported_and_emission_goes_on(session, caplog) -> None:
    handle = livereview.serve(session, port=0)
    start = session.events.seq

    async def lose_the_server() -> list[dict]:
        async with websockets.connect(f"{handle.ws_url}?since={start}") as socket:
            await asyncio.to_thread(emit_many, session, 3)
            received = [json.loads(await asyncio.wait_for(socket.recv(), 30)) for _ in range(3)]
            handle.loop.call_soon_threadsafe(handle.loop.stop)  # the loop dies mid-stream
            with pytest.raises(websockets.ConnectionClosed):
                await asyncio.wait_for(socket.recv(), 30)
        return received

    with caplog.at_level("WARNING"):
        received = asyncio.run(lose_the_server())
        wait_until(lambda: not handle.running, what="server thread ended")
        emit_many(session, 5)  # the bridge finds the loop gone and stands down
    assert [m["seq"] for m in received] == [start + 1, start + 2, start + 3]
    health = {c["key"]: c["message"] for c in session.health()}
    assert "live channel down" in health["live-server"]
    assert "DEGRADED" in caplog.text
    wait_until(lambda: max(event_lines(session)) == start + 8, what="event log written")
    handle.stop()
    assert "live-server" not in {c["key"] for c in session.health()}
    assert "live-server" not in {s["subscriber"] for s in session.events.stats()}


def test_metrics_and_health_endpoints(session, server) -> None:
    emit_many(session, 3)
    asyncio.run(ws_read(f"{server.ws_url}?since=0", 3))
    metrics = httpx.get(f"{server.url}/metrics").json()
    assert metrics["events"]["emitted"] == session.events.seq
    assert metrics["live_server"]["url"] == server.url
    assert metrics["live_server"]["clients"][0]["delivered"] == 3
    assert {s["subscriber"] for s in metrics["subscribers"]} >= {"event-log", "live-server"}
    assert httpx.get(f"{server.url}/health").json() == []


def test_the_cli_serves_and_a_killed_server_leaves_the_session_intact(session) -> None:
    session.set_override("c00000-s003", user="ana", text="before the crash")
    view = session.view()
    session.close()
    process = subprocess.Popen(
        [sys.executable, "-m", "livereview", "serve", str(session.directory), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        banner = process.stdout.readline()
        assert " on http://127.0.0.1:" in banner, process.stderr.read() if process.poll() is not None else banner
        url = banner.split(" on ", 1)[1].split()[0]

        async def connect_then_lose_the_server() -> dict:
            async with websockets.connect(url.replace("http", "ws") + "/ws") as socket:
                snapshot = json.loads(await asyncio.wait_for(socket.recv(), 30))
                os.kill(process.pid, signal.SIGKILL)
                with pytest.raises(websockets.ConnectionClosed):
                    await asyncio.wait_for(socket.recv(), 30)
            return snapshot

        snapshot = asyncio.run(connect_then_lose_the_server())
    finally:
        process.kill()
        process.wait(30)
    assert snapshot["kind"] == SNAPSHOT and len(snapshot["segments"]) == len(view)
    reopened = livereview.open_session(session.directory)
    pd.testing.assert_frame_equal(reopened.view(), view)
    reopened.close()


# -- the pipeline with and without a server (real models on the 30 s sample) --------------------


def _run_sample(sample, out_dir, before_run=None):
    session = livereview.Session.create(
        sample["audio"],
        out_dir=out_dir,
        options=livereview.RunOptions(diarize=livereview.DiarizeOptions(num_speakers=2)),
    )
    context = before_run(session) if before_run else None
    session.run(progress=False)
    return session, context


def _is_run_end(message: dict) -> bool:
    return message["kind"] == SUMMARY and message.get("stage") == "run"


@pytest.fixture(scope="module")
def served_run(tmp_path_factory, sample):
    """The sample processed while served: a WebSocket and an SSE client, a buggy and a stalled subscriber."""
    release = threading.Event()

    def attach(session):
        handle = livereview.serve(session, port=0)
        session.events.subscribe(lambda event: 1 / 0, name="buggy")
        session.events.subscribe(lambda event: release.wait(60), name="stalled", maxsize=1)
        recorders = [
            StreamRecorder(handle.ws_url, "ws", _is_run_end),
            StreamRecorder(f"{handle.url}/events", "sse", _is_run_end),
        ]
        return handle, recorders

    session, (handle, recorders) = _run_sample(sample, tmp_path_factory.mktemp("served"), attach)
    streams = [recorder.join(120) for recorder in recorders]
    release.set()
    handle.stop()
    session.events.close()
    return session, streams


@pytest.fixture(scope="module")
def crashed_run(tmp_path_factory, sample):
    """The sample processed while the server's event loop is stopped abruptly after the first segments."""

    def attach(session):
        handle = livereview.serve(session, port=0)

        def crash(event: LiveEvent) -> None:
            if event.kind == "segments" and handle.loop is not None and handle.loop.is_running():
                handle.loop.call_soon_threadsafe(handle.loop.stop)

        session.events.subscribe(crash, name="crash")
        recorder = StreamRecorder(handle.ws_url, "ws", _is_run_end)
        return handle, recorder

    session, (handle, recorder) = _run_sample(sample, tmp_path_factory.mktemp("crashed"), attach)
    health = session.health()
    crashed = not handle.running
    handle.stop()
    session.events.close()
    return session, recorder, health, crashed


@pytest.mark.slow
def test_pipeline_results_are_the_same_with_a_server_running(served_run, sample_session) -> None:
    session, _ = served_run
    assert session.status == "complete"
    pd.testing.assert_frame_equal(session.segments, sample_session.segments)


@pytest.mark.slow
def test_clients_received_the_whole_run_in_order(served_run) -> None:
    session, streams = served_run
    logged = event_lines(session)
    for messages in streams:
        snapshot, *events = messages
        assert snapshot["kind"] == SNAPSHOT
        assert [m["seq"] for m in events] == list(range(snapshot["seq"] + 1, events[-1]["seq"] + 1))
        assert all(LiveEvent.from_dict(m).to_json() == logged[m["seq"]] for m in events)
        assert _is_run_end(events[-1])
    metrics = session.metrics()
    assert metrics["events"]["last_run"]["per_second"] > 0
    assert set(metrics["events"]["last_run"]["stage_seconds"]) == {"transcribe", "diarize", "classify"}
    assert {c["transport"] for c in metrics["live_server"]["clients"]} == {"ws", "sse"}
    written = json.loads(session.paths.metrics.read_text())  # as the run left it
    assert written["live_server"]["clients_connected"] == 2
    assert {s["subscriber"] for s in written["subscribers"]} >= {"live-server", "buggy", "stalled"}
    assert written["real_time_factors"]["total"] > 0 and written["events"]["emitted"] > 0


@pytest.mark.slow
def test_pipeline_results_are_the_same_when_the_server_crashes_midway(crashed_run, sample_session) -> None:
    session, recorder, health, crashed = crashed_run
    assert crashed
    assert session.status == "complete"
    pd.testing.assert_frame_equal(session.segments, sample_session.segments)
    assert any(c["key"] == "live-server" and "live channel down" in c["message"] for c in health)
    assert not any(_is_run_end(m) for m in recorder.messages)  # the client lost the stream midway
