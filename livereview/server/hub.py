"""The server's view of the event stream: a ring of recent events, the connected clients, snapshots.

Every method of :class:`EventHub` except :meth:`~EventHub.stats` runs on the server's
event loop. Each client has a bounded queue; a client whose queue fills is skipped
until it has sent what is queued, then gets a ``summary`` of what it missed and a
snapshot (the merged view) to resync from.
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import json
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from livereview.core.events import SUMMARY, LiveEvent
from livereview.core.jsonl import dumps, read_jsonl
from livereview.review.session import Session
from livereview.server.access import Principal

logger = logging.getLogger(__name__)

#: The message kind that tells a client to replace its state.
SNAPSHOT = "snapshot"
#: Health key of the banner shown while connected clients have fallen behind.
LAGGING_CLIENTS = "live-clients"

_CLOSE = object()
_WAKE = object()


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
        """Add an event from the bridge; events the bridge dropped (it fell behind) resync every client.

        Sequence numbers are shared by every process writing the session, so the stream
        skips the numbers other processes took: a skipped number is not a lost event.
        """
        if kind == SUMMARY and "first_dropped_seq" in data and "last_dropped_seq" in data:
            self._gap(int(data["first_dropped_seq"]), int(data["last_dropped_seq"]))
            return
        if seq <= self.last_seq:
            return  # emitted before the server subscribed: events.jsonl has it
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
            backlog = [(seq, text) for seq, text in self.ring if seq > since]
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
                None, _read_event_range, self.session.paths.events, *start.file_range
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
        for record in read_jsonl(path):
            seq = int(record["seq"])
            if first <= seq <= last:
                found.setdefault(seq, dumps(record))  # the text LiveEvent.to_json wrote
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
