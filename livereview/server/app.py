"""Live transport: a session's events over WebSocket (primary) and Server-Sent Events (fallback).

Every message is one JSON object with a ``kind``. Live events are exactly
:meth:`livereview.core.events.LiveEvent.to_json`; the only other kind is
``"snapshot"``: the merged view (``segments``), ``status`` and the ``seq`` it is at
least as new as, sent when a client connects without a position, asks for one
that is no longer retained, or fell behind. After a snapshot at ``seq`` S the
client receives every event after S, in order.

Endpoints (``ServerHandle.url`` + path)::

    GET  /            session id, status, last seq, endpoint list
    WS   /ws          live events; ?since=SEQ resumes after SEQ
    GET  /events      the same as text/event-stream; Last-Event-ID (or ?since=) resumes
    GET  /snapshot    the snapshot message
    GET  /metrics     session.metrics() with this server's clients
    GET  /health      session.health(): current degraded conditions
    GET  /overrides   corrections in effect
    POST /overrides   {"segment_id", "fields": {...}} or {"rows": [...], "confirm": true}
    POST /overrides/undo   revert the caller's last batch

The server subscribes one bridge to ``session.events``: its delivery thread hands
each event's JSON to the server's event loop (``loop.call_soon_threadsafe``), so
the pipeline never waits for the network. The loop keeps a ring of recent events
for resuming (older positions are read back from ``events.jsonl``) and one
bounded queue per client. A client whose queue fills is skipped until it has
sent what is queued; it then gets a ``summary`` of what it missed and a snapshot.

Access: bound to loopback, anyone local may read and edit (edits name their
``user``). With a token file (one ``TOKEN USER ROLE`` line per token, role
``viewer``, ``editor`` or ``admin``) every request needs a token, sent as
``Authorization: Bearer TOKEN`` or ``?token=TOKEN``, and edits need an editor.
Listening on any other address requires a token file. :func:`livereview.server.serve`
runs it (:mod:`livereview.server.handle`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

import pandas as pd
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from livereview.core.events import LiveEvent
from livereview.core.roles import WRITE_ROLES
from livereview.live.metrics import LIVE_SERVER_SOURCE
from livereview.review.session import Session
from livereview.server.access import Principal, RequestError, authenticate
from livereview.server.hub import Client, EventHub, _Start
from livereview.store.override_rules import ConfirmationRequiredError, OverrideError

logger = logging.getLogger(__name__)

#: Recent events kept in memory for resuming clients.
RING_SIZE = 5000
#: Messages queued per client before it counts as lagging.
CLIENT_QUEUE = 256
#: Seconds between SSE keep-alive comments (they also reveal dropped connections).
KEEPALIVE_SECONDS = 15.0
#: Clients served at once; more are refused with 503.
MAX_CLIENTS = 256


class _Bridge:
    """An ``EventEmitter`` subscriber that hands each event to the hub on the server's loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop, hub: EventHub, on_down: Callable[[str], None]) -> None:
        self.loop = loop
        self.hub = hub
        self.on_down = on_down
        self.down = False

    def __call__(self, event: LiveEvent) -> None:
        if self.down:
            return
        text = event.to_json()
        try:
            self.loop.call_soon_threadsafe(self.hub.publish, event.seq, event.kind, text, event.data)
        except RuntimeError as error:  # the loop is closed: the server is gone
            self.down = True
            self.on_down(f"live server event loop is gone ({error})")


class LiveServer:
    """The ASGI application serving one session (see the module docstring for endpoints).

    Parameters
    ----------
    session : Session
        The recorded session to serve.
    tokens : mapping of str to Principal, optional
        Token -> who it acts as; None lets any local caller read and edit.
    ring_size, queue_size : int
        Events kept for resuming; messages queued per client.
    keepalive : float
        Seconds between SSE keep-alive comments.
    max_clients : int
        Streams served at once.
    watch_interval : float
        Seconds between polls of the override log for other writers' corrections.
    """

    def __init__(
        self,
        session: Session,
        *,
        tokens: Mapping[str, Principal] | None = None,
        ring_size: int = RING_SIZE,
        queue_size: int = CLIENT_QUEUE,
        keepalive: float = KEEPALIVE_SECONDS,
        max_clients: int = MAX_CLIENTS,
        watch_interval: float = 0.5,
    ) -> None:
        if ring_size < 1 or queue_size < 1:
            msg = f"ring_size and queue_size must be at least 1, got {ring_size} and {queue_size}"
            raise ValueError(msg)
        self.session = session
        self.tokens = dict(tokens) if tokens is not None else None
        self.keepalive = keepalive
        self.max_clients = max_clients
        self.watch_interval = watch_interval
        self.hub = EventHub(session, ring_size=ring_size, queue_size=queue_size)
        self.url = ""
        self._subscription: Any = None
        self._bridge: _Bridge | None = None
        self._started_watch = False
        self.app = Starlette(
            routes=[
                Route("/", self.index),
                Route("/snapshot", self.snapshot),
                Route("/events", self.events),
                Route("/metrics", self.metrics),
                Route("/health", self.health),
                Route("/overrides", self.overrides, methods=["GET", "POST"]),
                Route("/overrides/undo", self.undo, methods=["POST"]),
                WebSocketRoute("/ws", self.websocket),
            ],
            lifespan=self._lifespan,
            exception_handlers={RequestError: _denied_handler},
        )

    @contextlib.asynccontextmanager
    async def _lifespan(self, app: Starlette) -> AsyncIterator[None]:
        self.attach(asyncio.get_running_loop())
        try:
            yield
        finally:
            self.hub.close()

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        """Subscribe the bridge, register the metrics source, watch other writers' corrections."""
        self._bridge = _Bridge(loop, self.hub, self._report_down)
        self._subscription = self.session.events.subscribe(self._bridge, name="live-server", maxsize=100_000)
        self.hub.last_seq = self.session.events.seq
        self.session.monitor.sources[LIVE_SERVER_SOURCE] = self.stats
        if self.watch_interval and not self.session.override_feed.watching:
            self.session.watch_overrides(self.watch_interval)
            self._started_watch = True

    def detach(self) -> None:
        """Undo :meth:`attach` (from any thread once the loop has stopped)."""
        if self._bridge is not None:
            self._bridge.down = True
        if self._subscription is not None:
            self.session.events.unsubscribe(self._subscription)
            self._subscription = None
        if self.session.monitor.sources.get(LIVE_SERVER_SOURCE) == self.stats:
            del self.session.monitor.sources[LIVE_SERVER_SOURCE]
        if self._started_watch:
            self.session.override_feed.stop()
            self._started_watch = False

    def stats(self) -> dict[str, Any]:
        return {"url": self.url} | self.hub.stats()

    def _report_down(self, why: str) -> None:
        self.session.monitor.health.report(
            "live-server", f"live channel down: {why}; the run goes on and events are still saved to events.jsonl"
        )

    # -- HTTP -------------------------------------------------------------------------------

    async def index(self, request: Request) -> Response:
        self._principal(request)
        return JSONResponse(
            {
                "session_id": self.session.session_id,
                "status": self.session.status,
                "seq": self.hub.last_seq,
                "endpoints": {
                    "websocket": "/ws?since=SEQ",
                    "sse": "/events (Last-Event-ID or ?since=SEQ)",
                    "snapshot": "/snapshot",
                    "metrics": "/metrics",
                    "health": "/health",
                    "overrides": "GET|POST /overrides, POST /overrides/undo",
                },
            }
        )

    async def snapshot(self, request: Request) -> Response:
        self._principal(request)
        _, text = await self.hub.snapshot("requested")
        return Response(text, media_type="application/json")

    async def metrics(self, request: Request) -> Response:
        self._principal(request)
        return JSONResponse(await run_in_threadpool(self.session.metrics))

    async def health(self, request: Request) -> Response:
        self._principal(request)
        return JSONResponse(await run_in_threadpool(self.session.health))

    async def overrides(self, request: Request) -> Response:
        principal = self._principal(request)
        if request.method == "GET":
            frame = await run_in_threadpool(self.session.overrides)
            return Response(frame.to_json(orient="records"), media_type="application/json")
        body = await self._body(request)
        user = self._editor(principal, body)
        options = {
            "user": user,
            "role": principal.role,
            "reason": body.get("reason"),
            "allow_new_speaker": bool(body.get("allow_new_speaker", False)),
        }
        if "rows" in body:
            rows = body["rows"]
            if not isinstance(rows, list) or not all(isinstance(row, dict) for row in rows):
                raise RequestError(422, "'rows' must be a list of objects, one per segment, with a 'segment_id'")
            batch = await self._edit(
                self.session.apply_overrides, pd.DataFrame(rows), confirm=body.get("confirm") is True, **options
            )
            return JSONResponse({"batch_id": batch})
        fields = body.get("fields")
        if not isinstance(body.get("segment_id"), str) or not isinstance(fields, dict):
            msg = "give 'segment_id' and 'fields' ({field: value}) for one segment, or 'rows' and 'confirm' for a batch"
            raise RequestError(422, msg)
        clashing = sorted(set(fields) & set(options))
        if clashing:
            raise RequestError(422, f"'fields' may not hold {clashing}; give them at the top level of the body")
        records = await self._edit(self.session.set_override, body["segment_id"], **options, **fields)
        return JSONResponse({"batch_id": records[0].batch_id, "records": [r.to_dict() for r in records]})

    async def undo(self, request: Request) -> Response:
        principal = self._principal(request)
        user = self._editor(principal, await self._body(request))
        batch = await self._edit(self.session.undo_last_batch, user, role=principal.role)
        return JSONResponse({"batch_id": batch})

    async def _edit(self, method: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        try:
            return await run_in_threadpool(method, *args, **kwargs)
        except PermissionError as error:
            raise RequestError(403, str(error)) from error
        except ConfirmationRequiredError as error:
            raise RequestError(422, str(error), confirmation_required=True) from error
        except OverrideError as error:
            raise RequestError(422, str(error)) from error

    def _principal(self, connection: HTTPConnection) -> Principal:
        return authenticate(connection, self.tokens)

    @staticmethod
    def _editor(principal: Principal, body: dict[str, Any]) -> str:
        if not principal.can_edit:
            who = f"user {principal.user!r}" if principal.user else "this caller"
            msg = f"{who} has role {principal.role!r}, which is read-only; editing needs a role among {WRITE_ROLES}"
            raise RequestError(403, msg)
        named = body.get("user")
        if principal.user is None:
            if not isinstance(named, str) or not named.strip():
                raise RequestError(422, 'name the operator: add "user": "<name>" to the request body')
            return named
        if named not in (None, principal.user):
            raise RequestError(422, f"body names user {named!r} but the token belongs to {principal.user!r}")
        return principal.user

    @staticmethod
    async def _body(request: Request) -> dict[str, Any]:
        try:
            body = await request.json()
        except ValueError as error:
            raise RequestError(400, f"request body is not JSON ({error})") from error
        if not isinstance(body, dict):
            raise RequestError(400, f"request body must be a JSON object, got {type(body).__name__}")
        return body

    # -- streams ----------------------------------------------------------------------------

    def _open_stream(self, connection: HTTPConnection, transport: str, since: str | None) -> tuple[Client, _Start]:
        principal = self._principal(connection)
        if len(self.hub.clients) >= self.max_clients:
            raise RequestError(503, f"{self.max_clients} clients already connected; try again later")
        if since is not None:
            try:
                position: int | None = int(since)
            except ValueError as error:
                raise RequestError(400, f"since must be an event seq (an integer), got {since!r}") from error
        else:
            position = None
        return self.hub.attach(transport, principal, position)

    async def events(self, request: Request) -> Response:
        since = request.headers.get("last-event-id") or request.query_params.get("since")
        client, start = self._open_stream(request, "sse", since)

        async def body() -> AsyncIterator[str]:
            try:
                yield "retry: 2000\n\n"
                async for text, resumable in self.hub.stream(client, start, self.keepalive):
                    if not text:
                        yield ": keep-alive\n\n"
                    elif resumable:
                        yield f"id: {client.sent_seq}\ndata: {text}\n\n"
                    else:
                        yield f"data: {text}\n\n"
            finally:
                self.hub.detach(client)

        headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
        return StreamingResponse(body(), media_type="text/event-stream", headers=headers)

    async def websocket(self, websocket: WebSocket) -> None:
        try:
            client, start = self._open_stream(websocket, "ws", websocket.query_params.get("since"))
        except RequestError as refused:
            try:
                await websocket.send_denial_response(_error_response(refused))
            except RuntimeError:  # the server cannot send an HTTP response to a WebSocket handshake
                await websocket.close(1008, refused.message[:120])
            return
        try:
            await websocket.accept()
            sender = asyncio.create_task(self._send_all(websocket, client, start))
            receiver = asyncio.create_task(_until_disconnect(websocket))
            done, pending = await asyncio.wait({sender, receiver}, return_when=asyncio.FIRST_COMPLETED)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
            failed = [task.exception() for task in done]
            if sender in done and failed == [None]:
                await websocket.close(1001)  # the server is closing: going away
            for error in failed:
                _log_stream_end(client, error)
        except Exception as error:  # a client gone mid-send ends only its own stream
            _log_stream_end(client, error)
        finally:
            self.hub.detach(client)

    async def _send_all(self, websocket: WebSocket, client: Client, start: _Start) -> None:
        async for text, _ in self.hub.stream(client, start, None):
            await websocket.send_text(text)


def _log_stream_end(client: Client, error: BaseException | None) -> None:
    """A disconnect is routine; anything else is a server fault worth a traceback."""
    if error is None:
        return
    if isinstance(error, WebSocketDisconnect | OSError):
        logger.debug("live client %s disconnected: %r", client.name, error)
    else:
        logger.warning("live stream of client %s failed", client.name, exc_info=error)


async def _until_disconnect(websocket: WebSocket) -> None:
    while (await websocket.receive())["type"] != "websocket.disconnect":
        pass


def _error_response(refused: RequestError) -> Response:
    return JSONResponse({"error": refused.message, **refused.extra}, status_code=refused.status)


async def _denied_handler(request: Request, error: Exception) -> Response:
    assert isinstance(error, RequestError)
    return _error_response(error)
