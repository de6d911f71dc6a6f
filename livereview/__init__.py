"""livereview: live review of long multi-speaker recordings in Jupyter.

Run the pipeline on a recording, follow its live events, correct results, export.
The package is organised as the data flows (see ``docs/architecture.md``):
:mod:`livereview.core` (the currency), :mod:`livereview.stages` (audio to labels),
:mod:`livereview.live` and :mod:`livereview.store`, :mod:`livereview.review` (the
session, its merged view, exports and reruns), then :mod:`livereview.ui`,
:mod:`livereview.server` and :mod:`livereview.cli`. Importing it loads no model library.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from livereview.core.events import LiveEvent
from livereview.core.options import ChunkOptions, DiarizeOptions, RunOptions, TranscribeOptions
from livereview.live.emitter import EventEmitter, RecordingSubscriber
from livereview.review.campaign import Campaign
from livereview.review.checks import InputError
from livereview.review.session import DEFAULT_OUTPUT, Session, run

if TYPE_CHECKING:
    from livereview.server.handle import ServerHandle
    from livereview.ui.review import ReviewWidget

__all__ = [
    "DEFAULT_OUTPUT",
    "Campaign",
    "ChunkOptions",
    "DiarizeOptions",
    "EventEmitter",
    "InputError",
    "LiveEvent",
    "RecordingSubscriber",
    "RunOptions",
    "Session",
    "TranscribeOptions",
    "batch",
    "open_corpus",
    "open_session",
    "review",
    "run",
    "serve",
]


def batch(recordings: Any, out_dir: os.PathLike[str] | str = DEFAULT_OUTPUT, client: Any = None, **options: Any) -> Any:
    """Run many recordings on Dask, each into its session directory; see :func:`livereview.corpus.runs.batch`."""
    from livereview.corpus.runs import batch as run_batch

    return run_batch(recordings, out_dir, client, **options)


def open_corpus(out_dir: os.PathLike[str] | str) -> Any:
    """Every session of an output folder as one corpus; see :class:`livereview.corpus.sessions.Corpus`."""
    from livereview.corpus.sessions import open_corpus as open_folder

    return open_folder(out_dir)


def open_session(directory: os.PathLike[str] | str, *, audio: os.PathLike[str] | str | None = None) -> Session:
    """Reopen a session directory written by an earlier run, from any folder.

    ``audio`` says where the recording is now when it moved (its hash is checked).
    """
    return Session.open(directory, audio=audio)


def serve(session: Session | os.PathLike[str] | str, **options: Any) -> ServerHandle:
    """Serve a session's live events over WebSocket and SSE in the background; see :func:`livereview.server.serve`.

    ``livereview.serve(session, port=0)`` returns a running :class:`~livereview.server.ServerHandle`
    (``.url``, ``.stop()``), bound to 127.0.0.1 unless ``host`` and tokens say otherwise.
    """
    from livereview.server.handle import serve as serve_session

    return serve_session(session, **options)


def review(session: Session | os.PathLike[str] | str, **options: Any) -> ReviewWidget:
    """Display the live review of a session in Jupyter; see :func:`livereview.ui.review.review`."""
    from livereview.ui.review import review as review_session

    return review_session(session, **options)
