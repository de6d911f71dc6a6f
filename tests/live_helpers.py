"""Helpers shared by the live server and operator tests: small sessions and stream clients."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import websockets

import livereview
from livereview.core.segments import CLASSIFIED, Segment
from livereview.review.run import SessionSink


def make_session(audio: Path, out_dir: Path, *, segments: int = 6, session_id: str | None = None) -> livereview.Session:
    """A complete session on ``audio`` with ``segments`` made-up classified segments, without running models."""
    session = livereview.Session.create(audio, out_dir=out_dir, session_id=session_id)
    rows = [
        Segment(
            session_id=session.session_id,
            segment_id=f"c00000-s{index:03d}",
            chunk_id=0,
            start=index * 4.0,
            end=index * 4.0 + 3.0,
            text=f"line {index}",
            speaker_id=f"SPEAKER_0{index % 2}",
            ic_ooc="IC",
            ic_ooc_confidence=0.9,
            status=CLASSIFIED,
        )
        for index in range(segments)
    ]
    sink = SessionSink(session)
    sink.commit_chunk({"chunk_id": 0, "start": 0.0, "end": 30.0, "final": True}, rows)
    sink.set_status("complete")
    session.close()
    return livereview.open_session(session.directory)


def emit_many(session: livereview.Session, count: int, *, pad: int = 0, stage: str = "test") -> list[int]:
    """Emit ``count`` events (each carrying ``pad`` bytes of data); their seqs."""
    return [
        session.events.emit("stage_started", stage=stage, data={"i": i, "pad": "x" * pad}).seq for i in range(count)
    ]


def wait_until(predicate: Callable[[], Any], timeout: float = 30.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            msg = f"{what} not met within {timeout} s"
            raise TimeoutError(msg)
        time.sleep(0.02)


async def ws_read(url: str, count: int, *, timeout: float = 30.0, **connect: Any) -> list[dict[str, Any]]:
    """Connect, read ``count`` messages, disconnect."""
    async with websockets.connect(url, **connect) as socket:
        return [json.loads(await asyncio.wait_for(socket.recv(), timeout)) for _ in range(count)]


def sse_read(url: str, count: int, *, headers: dict[str, str] | None = None, timeout: float = 30.0) -> list[Any]:
    """Read ``count`` SSE messages as ``(id or None, parsed data)``; comments and ``retry`` skipped."""
    messages: list[Any] = []
    with httpx.stream("GET", url, headers=headers or {}, timeout=timeout) as response:
        response.raise_for_status()
        for message in sse_messages(response.iter_lines()):
            messages.append(message)
            if len(messages) == count:
                break
    return messages


def sse_messages(lines: Any) -> Any:
    """Parse SSE lines into ``(id or None, data as JSON)`` per message."""
    event_id, data = None, []
    for line in lines:
        if line == "":
            if data:
                yield event_id, json.loads("\n".join(data))
            event_id, data = None, []
        elif line.startswith("id: "):
            event_id = int(line[4:])
        elif line.startswith("data: "):
            data.append(line[6:])


class StreamRecorder:
    """Records every message of one WebSocket or SSE stream on a thread, until ``stop_when`` matches."""

    def __init__(self, url: str, transport: str, stop_when: Callable[[dict[str, Any]], bool]) -> None:
        self.url = url
        self.transport = transport
        self.stop_when = stop_when
        self.messages: list[dict[str, Any]] = []
        self.error: BaseException | None = None
        self.connected = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        if not self.connected.wait(30):
            msg = f"{transport} client could not connect to {url}: {self.error!r}"
            raise TimeoutError(msg)

    def join(self, timeout: float) -> list[dict[str, Any]]:
        self._thread.join(timeout)
        if self._thread.is_alive():
            msg = f"{self.transport} stream did not end within {timeout} s ({len(self.messages)} messages)"
            raise TimeoutError(msg)
        if self.error is not None:
            raise self.error
        return self.messages

    def _run(self) -> None:
        try:
            if self.transport == "ws":
                asyncio.run(self._ws())
            else:
                self._sse()
        except BaseException as error:
            self.error = error
            self.connected.set()

    async def _ws(self) -> None:
        async with websockets.connect(self.url, open_timeout=30) as socket:
            self.connected.set()
            async for text in socket:
                if self._keep(json.loads(text)):
                    return

    def _sse(self) -> None:
        with httpx.stream("GET", self.url, timeout=httpx.Timeout(30, read=600)) as response:
            self.connected.set()
            for _, message in sse_messages(response.iter_lines()):
                if self._keep(message):
                    return

    def _keep(self, message: dict[str, Any]) -> bool:
        self.messages.append(message)
        return self.stop_when(message)
