"""A real local OpenAI-compatible chat server for tests (starlette + uvicorn on a free port)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

Answer = Callable[[list[dict[str, str]]], str]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def running(app: Starlette) -> Iterator[str]:
    """Serve ``app`` on 127.0.0.1 in a thread; yields its ``http://127.0.0.1:<port>`` root."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "test server did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=5)


@contextmanager
def serve_chat(answer: Answer) -> Iterator[str]:
    """A chat-completions server whose reply content is ``answer(messages)``; yields its ``/v1`` base URL."""

    async def chat_completions(request: Request) -> JSONResponse:
        body = await request.json()
        content = answer(body["messages"])
        return JSONResponse({"choices": [{"index": 0, "message": {"role": "assistant", "content": content}}]})

    app = Starlette(routes=[Route("/v1/chat/completions", chat_completions, methods=["POST"])])
    with running(app) as root:
        yield f"{root}/v1"
