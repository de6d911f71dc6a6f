"""The live server: a session's events over WebSocket and Server-Sent Events, with corrections over HTTP.

:mod:`~livereview.server.access` (tokens and roles), :mod:`~livereview.server.hub`
(the ring of recent events and the connected clients), :mod:`~livereview.server.app`
(the Starlette application) and :mod:`~livereview.server.handle` (:func:`serve`,
running it with uvicorn on a thread of its own).

May import: everything below it (review, live, store, stages, core). Not the UI or the CLI.
"""

from livereview.server.access import Principal, is_loopback, load_tokens
from livereview.server.app import LiveServer
from livereview.server.handle import DEFAULT_HOST, ServerHandle, serve
from livereview.server.hub import SNAPSHOT

__all__ = ["DEFAULT_HOST", "SNAPSHOT", "LiveServer", "Principal", "ServerHandle", "is_loopback", "load_tokens", "serve"]
