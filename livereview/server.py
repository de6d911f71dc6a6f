"""Live transport: a session's events over WebSocket (primary) and Server-Sent Events (fallback).

Every message is one JSON object with a ``kind``. Live events are exactly
:meth:`livereview.events.LiveEvent.to_json`; the only other kind is
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
Listening on any other address requires a token file.

Usage
-----
>>> handle = livereview.serve(session, port=0)        # doctest: +SKIP
>>> handle.url                                         # doctest: +SKIP
'http://127.0.0.1:41823'
>>> handle.stop()                                      # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import ipaddress
import itertools
import json
import logging
import os
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
import uvicorn
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from livereview.events import SUMMARY, LiveEvent
from livereview.metrics import LIVE_SERVER_SOURCE
from livereview.overrides import EDITOR, ROLES, WRITE_ROLES, ConfirmationRequiredError, OverrideError

if TYPE_CHECKING:
    from livereview.session import Session

logger = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
#: Recent events kept in memory for resuming clients.
RING_SIZE = 5000
#: Messages queued per client before it counts as lagging.
CLIENT_QUEUE = 256
#: Seconds between SSE keep-alive comments (they also reveal dropped connections).
KEEPALIVE_SECONDS = 15.0
#: Clients served at once; more are refused with 503.
MAX_CLIENTS = 256
#: Shortest token accepted in a token file.
MIN_TOKEN_CHARS = 16
#: The message kind that tells a client to replace its state.
SNAPSHOT = "snapshot"
#: Health key of the banner shown while connected clients have fallen behind.
LAGGING_CLIENTS = "live-clients"

_CLOSE = object()
_WAKE = object()


# -- access -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Principal:
    """Who a request acts as: ``user`` (None when the caller names itself) and ``role``."""

    user: str | None
    role: str

    @property
    def can_edit(self) -> bool:
        return self.role in WRITE_ROLES


#: The caller on a loopback server without tokens: trusted to edit, names itself.
LOCAL = Principal(None, EDITOR)


def load_tokens(path: os.PathLike[str] | str) -> dict[str, Principal]:
    """Read a token file: one ``TOKEN USER ROLE`` per line; blank lines and ``#`` comments skipped.

    Raises
    ------
    FileNotFoundError
        No such file.
    ValueError
        A malformed line, a short or repeated token, or an unknown role (with its line number).
    """
    path = Path(path)
    if not path.is_file():
        msg = f"token file not found: {path}"
        raise FileNotFoundError(msg)
    tokens: dict[str, Principal] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        parts = text.split()
        where = f"token file {path} line {number}"
        if len(parts) != 3:
            msg = f"{where} has {len(parts)} fields; write 'TOKEN USER ROLE', e.g. 'k3y... ana editor'"
            raise ValueError(msg)
        token, user, role = parts
        if role not in ROLES:
            msg = f"{where}: unknown role {role!r}; use one of {ROLES}"
            raise ValueError(msg)
        if len(token) < MIN_TOKEN_CHARS:
            msg = (
                f"{where}: token is {len(token)} characters, under {MIN_TOKEN_CHARS}; make one with "
                "python -c 'import secrets; print(secrets.token_urlsafe())'"
            )
            raise ValueError(msg)
        if token in tokens:
            msg = f"{where} repeats a token given earlier; every token must be unique"
            raise ValueError(msg)
        tokens[token] = Principal(user, role)
    if not tokens:
        msg = f"token file {path} holds no token; write one 'TOKEN USER ROLE' line per user"
        raise ValueError(msg)
    return tokens


def _as_principal(value: tuple[str, str] | Principal) -> Principal:
    principal = value if isinstance(value, Principal) else Principal(*value)
    if principal.role not in ROLES or not principal.user:
        msg = f"token maps to {value!r}; give (user, role) with a user name and a role among {ROLES}"
        raise ValueError(msg)
    return principal


def is_loopback(host: str) -> bool:
    """Whether ``host`` is a loopback address (``127.0.0.1``, ``::1``, ``localhost``)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class _RequestError(Exception):
    """A request refused with an HTTP ``status`` and a message saying why and what to do."""

    def __init__(self, status: int, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.extra = extra


def _authenticate(connection: HTTPConnection, tokens: Mapping[str, Principal] | None) -> Principal:
    if tokens is None:
        return LOCAL
    header = connection.headers.get("authorization", "")
    token = header[7:].strip() if header.lower().startswith("bearer ") else connection.query_params.get("token")
    if not token:
        msg = "this server needs a token: send 'Authorization: Bearer TOKEN' or ?token=TOKEN"
        raise _RequestError(401, msg)
    principal = tokens.get(token)
    if principal is None:
        raise _RequestError(401, "unknown token; ask the session's host for a valid one")
    return principal


# -- the event hub (lives on the server's event loop) -------------------------------------------


class Client:
    """One connected WebSocket or SSE client: its bounded queue and counters.

    Only the server's event loop touches the queue; counters are read from any thread.
    """

    def __init__(self, name: str, transport: str, principal: Principal, queue_size: int) -> None:
        self.name = name
        self.transport = transport
        self.principal = principal
        self.connected = time.time()
        self.queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=queue_size)
        self.delivered = 0
        self.dropped = 0
        self.resyncs = 0
        self.sent_seq = 0
        self.resumed_from = "snapshot"
        self.missed: list[int] | None = None  # [count, first seq, last seq] while lagging
        self.closed = False

    def offer(self, seq: int, text: str) -> bool:
        """Queue an event without waiting; False when the client is lagging and it was dropped."""
        if self.missed is not None:
            self.missed[0] += 1
            self.missed[2] = seq
            self.dropped += 1
            return False
        try:
            self.queue.put_nowait((seq, text))
        except asyncio.QueueFull:
            self.missed = [1, seq, seq]
            self.dropped += 1
            return False
        return True

    def lose(self, first: int, last: int) -> None:
        """Events ``first..last`` never reached the server: resync this client."""
        if self.missed is None:
            self.missed = [last - first + 1, first, last]
        else:
            self.missed[0] += last - first + 1
            self.missed[2] = max(self.missed[2], last)
        self.dropped += last - first + 1
        self._poke(_WAKE)

    def close(self) -> None:
        """End the client's stream after what is queued."""
        self.closed = True
        if not self._poke(_CLOSE):
            self.queue.get_nowait()
            self.queue.put_nowait(_CLOSE)

    def _poke(self, marker: object) -> bool:
        try:
            self.queue.put_nowait(marker)
        except asyncio.QueueFull:
            return False
        return True

    def stats(self) -> dict[str, Any]:
        return {
            "client": self.name,
            "transport": self.transport,
            "user": self.principal.user,
            "role": self.principal.role,
            "connected": round(self.connected, 3),
            "resumed_from": self.resumed_from,
            "delivered": self.delivered,
            "dropped": self.dropped,
            "resyncs": self.resyncs,
            "queued": self.queue.qsize(),
            "last_seq": self.sent_seq,
        }


@dataclass
class _Start:
    """How a client's stream begins: a snapshot (``reason``) or a backlog after ``since``."""

    since: int | None
    backlog: list[tuple[int, str]] | None
    file_range: tuple[int, int] | None
    reason: str | None


class EventHub:
    """The server's view of the event stream: the recent-event ring and the clients.

    Every method except :meth:`stats` runs on the server's event loop.

    Parameters
    ----------
    session : Session
        Whose events, view and log are served.
    ring_size, queue_size : int
        Events kept for resuming; messages queued per client.
    """

    def __init__(self, session: Session, *, ring_size: int, queue_size: int) -> None:
        self.session = session
        self.queue_size = queue_size
        self.ring: collections.deque[tuple[int, str]] = collections.deque(maxlen=ring_size)
        self.last_seq = 0
        self.published = 0
        self.lost = 0
        self.clients: dict[str, Client] = {}
        self.departed: collections.deque[dict[str, Any]] = collections.deque(maxlen=100)
        self.starts: collections.Counter[str] = collections.Counter()
        self._names = itertools.count(1)
        self._snapshots: dict[int, asyncio.Future[str]] = {}

    # producer side

    def publish(self, seq: int, kind: str, text: str, data: dict[str, Any]) -> None:
        """Add an event from the bridge; a gap (the bridge fell behind) resyncs every client."""
        if kind == SUMMARY and "first_dropped_seq" in data and "last_dropped_seq" in data:
            self._gap(int(data["first_dropped_seq"]), int(data["last_dropped_seq"]))
            return
        if seq <= self.last_seq:
            return  # emitted before the server subscribed: events.jsonl has it
        if seq > self.last_seq + 1:
            self._gap(self.last_seq + 1, seq - 1)
        self.ring.append((seq, text))
        self.last_seq = seq
        self.published += 1
        for client in list(self.clients.values()):
            if not client.offer(seq, text) and client.dropped == 1:
                self._report_lagging()

    def _report_lagging(self) -> None:
        """One banner while any connected client has fallen behind (their names are in the metrics)."""
        self.session.monitor.health.report(
            LAGGING_CLIENTS,
            "live clients fell behind the event stream; they get a summary and a snapshot to resync "
            "(see live_server.clients in the metrics)",
        )

    def _gap(self, first: int, last: int) -> None:
        if last <= self.last_seq:
            return
        first = max(first, self.last_seq + 1)
        logger.warning("live server missed events %d-%d; every client resyncs", first, last)
        self.lost += last - first + 1
        self.ring.clear()
        self.last_seq = max(self.last_seq, last)
        for client in self.clients.values():
            client.lose(first, last)
        if self.clients:
            self._report_lagging()

    # client side

    def attach(self, transport: str, principal: Principal, since: int | None) -> tuple[Client, _Start]:
        """Register a client and decide how its stream starts (atomic with :meth:`publish`)."""
        user = f"-{principal.user}" if principal.user else ""
        client = Client(f"{transport}-{next(self._names)}{user}", transport, principal, self.queue_size)
        self.clients[client.name] = client
        last = self.last_seq
        if since is None:
            return client, _Start(None, None, None, "initial")
        if since > last:
            return client, _Start(None, None, None, f"seq {since} is ahead of the stream (last {last})")
        first = self.ring[0][0] if self.ring else last + 1
        if since + 1 >= first:
            backlog = list(itertools.islice(self.ring, since + 1 - first, None))
            return client, _Start(since, backlog, None, None)
        backlog = list(self.ring)
        return client, _Start(since, backlog, (since + 1, first - 1), None)

    def detach(self, client: Client) -> None:
        if self.clients.pop(client.name, None) is not None:
            self.departed.append(client.stats() | {"disconnected": round(time.time(), 3)})
            if not any(c.dropped for c in self.clients.values()):
                self.session.monitor.health.clear(LAGGING_CLIENTS)

    async def stream(self, client: Client, start: _Start, keepalive: float | None) -> AsyncIterator[tuple[str, bool]]:
        """Messages for ``client`` as ``(json text, carries a resumable seq)``; ``("", False)`` is a keep-alive."""
        backlog = start.backlog
        if start.file_range is not None:
            early = await asyncio.get_running_loop().run_in_executor(
                None, _read_event_range, self.session.store.events_path, *start.file_range
            )
            if early is None:
                backlog = None
                start.reason = f"events after seq {start.since} are no longer retained"
            else:
                backlog = early + (backlog or [])
        # counted before anything is sent: a client may leave as soon as it has what it asked for
        if backlog is None:
            client.resumed_from = "snapshot"
            self.starts[client.resumed_from] += 1
            yield await self._resync(client, start.reason or "initial"), True
        else:
            client.resumed_from = "file" if start.file_range else "ring"
            self.starts[client.resumed_from] += 1
            client.sent_seq = start.since or 0
            for seq, text in backlog:
                if seq > client.sent_seq:
                    client.sent_seq = seq
                    client.delivered += 1
                    yield text, True
        while True:
            if client.missed is not None and client.queue.empty() and not client.closed:
                count, first, last = client.missed
                client.missed = None
                client.resyncs += 1
                yield self._summary(client, count, first, last), False
                yield await self._resync(client, f"{count} events dropped while the client was behind"), True
                continue
            try:
                item = await asyncio.wait_for(client.queue.get(), keepalive) if keepalive else await client.queue.get()
            except TimeoutError:
                yield "", False
                continue
            if item is _CLOSE:
                return
            if item is _WAKE:
                continue
            seq, text = item
            if seq > client.sent_seq:
                client.sent_seq = seq
                client.delivered += 1
                yield text, True

    async def snapshot(self, reason: str) -> tuple[int, str]:
        """The snapshot message at the current seq (built once per seq, off the loop)."""
        seq = self.last_seq
        future = self._snapshots.get(seq)
        if future is None:
            future = asyncio.get_running_loop().run_in_executor(None, _snapshot_members, self.session, seq)
            self._snapshots = {seq: future}
        try:
            members = await asyncio.shield(future)
        except Exception:
            if self._snapshots.get(seq) is future:
                del self._snapshots[seq]  # build it again next time
            raise
        return seq, f'{{"kind":"{SNAPSHOT}","reason":{json.dumps(reason)},{members}}}'

    async def _resync(self, client: Client, reason: str) -> str:
        seq, text = await self.snapshot(reason)
        client.sent_seq = max(client.sent_seq, seq)
        client.delivered += 1
        return text

    def _summary(self, client: Client, count: int, first: int, last: int) -> str:
        event = LiveEvent(
            session_id=self.session.session_id,
            seq=last,
            kind=SUMMARY,
            timestamp=time.time(),
            message=f"{count} events dropped for live client {client.name}; a snapshot follows to resync",
            data={"dropped": count, "first_dropped_seq": first, "last_dropped_seq": last, "client": client.name},
        )
        return event.to_json()

    def close(self) -> None:
        """End every client's stream."""
        for client in list(self.clients.values()):
            client.close()

    def stats(self) -> dict[str, Any]:
        """Clients (connected and recent), ring and resume counts; safe from any thread."""
        clients = [client.stats() for client in list(self.clients.values())]
        departed = list(self.departed)
        ring = list(self.ring)
        return {
            "clients_connected": len(clients),
            "clients": clients + departed,
            "published": self.published,
            "lost": self.lost,
            "last_seq": self.last_seq,
            "ring": {"events": len(ring), "first_seq": ring[0][0] if ring else None},
            "starts": dict(self.starts),
            "delivered": sum(c["delivered"] for c in clients + departed),
            "dropped": sum(c["dropped"] for c in clients + departed),
        }


def _read_event_range(path: Path, first: int, last: int, *, tries: int = 5) -> list[tuple[int, str]] | None:
    """Events ``first..last`` as written to ``events.jsonl``, or None when any is missing.

    The event log is written by its own subscriber thread and may lag the stream by
    a moment, so a short read is retried ``tries`` times, 0.1 s apart.
    """
    for attempt in range(tries):
        found: dict[int, str] = {}
        with contextlib.suppress(FileNotFoundError), path.open(encoding="utf-8") as lines:
            for line in lines:
                if not line.endswith("\n"):
                    break
                seq = int(json.loads(line)["seq"])
                if first <= seq <= last:
                    found.setdefault(seq, line[:-1])
        if len(found) == last - first + 1:
            return [(seq, found[seq]) for seq in range(first, last + 1)]
        if attempt + 1 < tries:
            time.sleep(0.1)
    return None


def _snapshot_members(session: Session, seq: int) -> str:
    """The snapshot's JSON members (no braces): session_id, seq, timestamp, status, segments, health.

    ``segments`` is the merged view without word timings, one object per row.
    """
    view = session.view().drop(columns=["words"], errors="ignore")
    head = json.dumps(
        {"session_id": session.session_id, "seq": seq, "timestamp": time.time(), "status": session.status},
        ensure_ascii=False,
    )
    health = json.dumps(session.health(), ensure_ascii=False)
    return f'{head[1:-1]},"segments":{view.to_json(orient="records")},"health":{health}'


# -- the bridge from the emitter's thread to the loop -------------------------------------------


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


# -- the ASGI application -----------------------------------------------------------------------


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
            exception_handlers={_RequestError: _denied_handler},
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
                raise _RequestError(422, "'rows' must be a list of objects, one per segment, with a 'segment_id'")
            batch = await self._edit(
                self.session.apply_overrides, pd.DataFrame(rows), confirm=body.get("confirm") is True, **options
            )
            return JSONResponse({"batch_id": batch})
        fields = body.get("fields")
        if not isinstance(body.get("segment_id"), str) or not isinstance(fields, dict):
            msg = "give 'segment_id' and 'fields' ({field: value}) for one segment, or 'rows' and 'confirm' for a batch"
            raise _RequestError(422, msg)
        clashing = sorted(set(fields) & set(options))
        if clashing:
            raise _RequestError(422, f"'fields' may not hold {clashing}; give them at the top level of the body")
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
            raise _RequestError(403, str(error)) from error
        except ConfirmationRequiredError as error:
            raise _RequestError(422, str(error), confirmation_required=True) from error
        except OverrideError as error:
            raise _RequestError(422, str(error)) from error

    def _principal(self, connection: HTTPConnection) -> Principal:
        return _authenticate(connection, self.tokens)

    @staticmethod
    def _editor(principal: Principal, body: dict[str, Any]) -> str:
        if not principal.can_edit:
            who = f"user {principal.user!r}" if principal.user else "this caller"
            msg = f"{who} has role {principal.role!r}, which is read-only; editing needs a role among {WRITE_ROLES}"
            raise _RequestError(403, msg)
        named = body.get("user")
        if principal.user is None:
            if not isinstance(named, str) or not named.strip():
                raise _RequestError(422, 'name the operator: add "user": "<name>" to the request body')
            return named
        if named not in (None, principal.user):
            raise _RequestError(422, f"body names user {named!r} but the token belongs to {principal.user!r}")
        return principal.user

    @staticmethod
    async def _body(request: Request) -> dict[str, Any]:
        try:
            body = await request.json()
        except ValueError as error:
            raise _RequestError(400, f"request body is not JSON ({error})") from error
        if not isinstance(body, dict):
            raise _RequestError(400, f"request body must be a JSON object, got {type(body).__name__}")
        return body

    # -- streams ----------------------------------------------------------------------------

    def _open_stream(self, connection: HTTPConnection, transport: str, since: str | None) -> tuple[Client, _Start]:
        principal = self._principal(connection)
        if len(self.hub.clients) >= self.max_clients:
            raise _RequestError(503, f"{self.max_clients} clients already connected; try again later")
        if since is not None:
            try:
                position: int | None = int(since)
            except ValueError as error:
                raise _RequestError(400, f"since must be an event seq (an integer), got {since!r}") from error
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
        except _RequestError as refused:
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


def _error_response(refused: _RequestError) -> Response:
    return JSONResponse({"error": refused.message, **refused.extra}, status_code=refused.status)


async def _denied_handler(request: Request, error: Exception) -> Response:
    assert isinstance(error, _RequestError)
    return _error_response(error)


# -- running it ---------------------------------------------------------------------------------


class ServerHandle:
    """A live server running on a background thread with its own event loop.

    Attributes
    ----------
    url : str
        ``http://HOST:PORT``; WebSocket clients use ``ws_url``.
    server : LiveServer
        The application (its ``hub`` holds the clients).
    """

    def __init__(
        self, server: LiveServer, sock: socket.socket, *, graceful: float = 3.0, owns_session: bool = False
    ) -> None:
        self.server = server
        self._owns_session = owns_session
        self.host, self.port = sock.getsockname()[:2]
        shown = f"[{self.host}]" if ":" in self.host else self.host
        self.url = f"http://{shown}:{self.port}"
        self.ws_url = f"ws://{shown}:{self.port}/ws"
        server.url = self.url
        config = uvicorn.Config(
            server.app,
            log_level="warning",
            lifespan="on",
            ws_per_message_deflate=False,
            timeout_graceful_shutdown=graceful,
        )
        self._uvicorn = uvicorn.Server(config)
        self._socket = sock
        self.loop: asyncio.AbstractEventLoop | None = None
        self.error: BaseException | None = None
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name=f"livereview-server-{self.port}", daemon=True)

    def start(self, timeout: float = 20.0) -> ServerHandle:
        """Start serving; returns once the server accepts connections."""
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._uvicorn.started:
            if not self._thread.is_alive():
                msg = f"live server on {self.url} failed to start: {self.error!r}"
                raise RuntimeError(msg) from self.error
            if time.monotonic() > deadline:
                self.stop()
                msg = f"live server on {self.url} did not start within {timeout} s"
                raise TimeoutError(msg)
            time.sleep(0.01)
        logger.info("live server for session %s on %s", self.server.session.session_id, self.url)
        return self

    @property
    def running(self) -> bool:
        return self._thread.is_alive() and not self._uvicorn.should_exit

    def stats(self) -> dict[str, Any]:
        """The server's clients and counters (also in ``session.metrics()['live_server']``)."""
        return self.server.stats()

    def stop(self, timeout: float = 10.0) -> None:
        """Close every stream, stop the server and unsubscribe it from the session's events."""
        self._stopping = True
        loop = self.loop
        if loop is not None and self._thread.is_alive():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self.server.hub.close)
        self._uvicorn.should_exit = True
        self._thread.join(timeout)
        if self._thread.is_alive():
            self._uvicorn.force_exit = True
            self._thread.join(timeout)
        self.server.detach()
        self.server.session.monitor.health.clear("live-server")
        self.server.session.monitor.health.clear(LAGGING_CLIENTS)
        if self._owns_session:
            self.server.session.close()

    def __enter__(self) -> ServerHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<ServerHandle {self.url} {state}, session {self.server.session.session_id!r}>"

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self.loop = loop
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._uvicorn.serve(sockets=[self._socket]))
        except BaseException as error:
            self.error = error
        finally:
            self._unwind(loop)
            self._socket.close()
            if not self._stopping:
                why = f"server thread ended unexpectedly ({self.error!r})" if self.error else "server stopped"
                self.server._report_down(why)

    def _unwind(self, loop: asyncio.AbstractEventLoop) -> None:
        """Close what a loop that stopped abruptly left open (connections, tasks), then the loop.

        After a graceful shutdown there is nothing left; after a crash the clients see
        their connections close instead of waiting on a dead server.
        """
        try:
            for server in getattr(self._uvicorn, "servers", []):
                server.close()
            for connection in list(self._uvicorn.server_state.connections):
                transport = getattr(connection, "transport", None)
                if transport is not None:
                    transport.abort()
            tasks = asyncio.all_tasks(loop)
            for task in tasks:
                task.cancel()
            if tasks:
                loop.run_until_complete(asyncio.wait(tasks, timeout=5))
            loop.run_until_complete(loop.shutdown_asyncgens())
        except Exception:
            logger.exception("cleaning up the live server's event loop failed")
        finally:
            loop.close()


def serve(
    session: Session | os.PathLike[str] | str,
    *,
    host: str = DEFAULT_HOST,
    port: int = 0,
    token_file: os.PathLike[str] | str | None = None,
    tokens: Mapping[str, tuple[str, str] | Principal] | None = None,
    ring_size: int = RING_SIZE,
    queue_size: int = CLIENT_QUEUE,
    keepalive: float = KEEPALIVE_SECONDS,
    max_clients: int = MAX_CLIENTS,
    watch_interval: float = 0.5,
) -> ServerHandle:
    """Serve a session's live events, snapshot, metrics and corrections in the background.

    Parameters
    ----------
    session : Session or path
        A session, or its directory (opened).
    host : str
        Address to listen on; loopback by default. Any other address needs tokens.
    port : int
        0 picks a free port (see ``handle.url``).
    token_file : path, optional
        ``TOKEN USER ROLE`` lines (see :func:`load_tokens`).
    tokens : mapping, optional
        Token -> ``(user, role)``, instead of a file.
    ring_size, queue_size, keepalive, max_clients, watch_interval
        See :class:`LiveServer`.

    Returns
    -------
    ServerHandle
        Running; ``handle.stop()`` stops it.

    Raises
    ------
    PermissionError
        A non-loopback ``host`` without tokens.
    OSError
        The port is taken.
    """
    from livereview.session import Session

    table = load_tokens(token_file) if token_file is not None else None
    if tokens is not None:
        table = (table or {}) | {token: _as_principal(value) for token, value in tokens.items()}
    if table is None and not is_loopback(host):
        msg = (
            f"refusing to listen on {host!r} without tokens: anyone who can reach it could read and edit "
            "the session. Pass a token file (one 'TOKEN USER ROLE' line per user) or listen on 127.0.0.1"
        )
        raise PermissionError(msg)
    sock = _listen(host, port)
    owns_session = not isinstance(session, Session)
    try:
        if owns_session:
            session = Session.open(session)
        server = LiveServer(
            session,
            tokens=table,
            ring_size=ring_size,
            queue_size=queue_size,
            keepalive=keepalive,
            max_clients=max_clients,
            watch_interval=watch_interval,
        )
    except BaseException:
        sock.close()
        raise
    return ServerHandle(server, sock, owns_session=owns_session).start()


def _listen(host: str, port: int) -> socket.socket:
    """A listening, non-blocking socket on ``host:port``; the error names the fix when the port is taken."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as error:
        sock.close()
        msg = f"cannot listen on {host}:{port} ({error.strerror}); pick another --port, or 0 for a free one"
        raise OSError(error.errno, msg) from error
    sock.listen(128)
    sock.setblocking(False)
    return sock
