"""Running the live server: uvicorn on a thread of its own, with its own event loop.

Usage
-----
>>> handle = livereview.serve(session, port=0)        # doctest: +SKIP
>>> handle.url                                         # doctest: +SKIP
'http://127.0.0.1:41823'
>>> handle.stop()                                      # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import threading
import time
from collections.abc import Mapping
from typing import Any

import uvicorn

from livereview.review.session import Session
from livereview.server.access import Principal, access_table
from livereview.server.app import CLIENT_QUEUE, KEEPALIVE_SECONDS, MAX_CLIENTS, RING_SIZE, LiveServer
from livereview.server.hub import LAGGING_CLIENTS

logger = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"


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
    table = access_table(host, token_file, tokens)
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
