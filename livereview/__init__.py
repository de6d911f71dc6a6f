"""livereview: live review of long multi-speaker recordings in Jupyter.

Run the pipeline on a recording, follow its live events, correct results, export.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from livereview.chunks import ChunkOptions
from livereview.diarize import DiarizeOptions
from livereview.events import EventEmitter, LiveEvent, RecordingSubscriber
from livereview.session import DEFAULT_OUTPUT, RunOptions, Session
from livereview.transcribe import TranscribeOptions

if TYPE_CHECKING:
    from livereview.server import ServerHandle

__all__ = [
    "ChunkOptions",
    "DiarizeOptions",
    "EventEmitter",
    "LiveEvent",
    "RecordingSubscriber",
    "RunOptions",
    "Session",
    "TranscribeOptions",
    "open_session",
    "review",
    "run",
    "serve",
]


def run(
    audio: os.PathLike[str] | str,
    *,
    session_id: str | None = None,
    out_dir: os.PathLike[str] | str = DEFAULT_OUTPUT,
    num_speakers: int | None = None,
    min_speakers: int | None = None,
    max_speakers: int | None = None,
    whisper_model: str = "tiny.en",
    language: str | None = None,
    device: str = "auto",
    diarization_pipeline: str = "offline",
    hub_token: str | None = None,
    chunk_length: float | ChunkOptions | dict[str, Any] | None = None,
    classifier: Any = None,
    party: os.PathLike[str] | str | None = None,
    background: bool = False,
    progress: bool = True,
) -> Session:
    """Run the whole pipeline on ``audio`` and return its :class:`Session`.

    Re-running with the same recording and session id resumes after the last
    completed chunk. With ``background=True`` the run goes on in a thread and the
    session is returned at once: subscribe to ``session.events``, then
    ``session.wait()``.

    Parameters
    ----------
    audio : path
        Any recording FFmpeg decodes.
    session_id : str, optional
        Directory name under ``out_dir``; defaults to the file name.
    num_speakers, min_speakers, max_speakers : int, optional
        Speaker count, when known.
    whisper_model : str
        faster-whisper model name or directory; ``"tiny.en"`` is bundled offline.
    language : str, optional
        Spoken language (``"en"``); detected when omitted.
    device : str
        ``"auto"`` (CUDA when present), ``"cpu"`` or ``"cuda"``.
    diarization_pipeline : str
        ``"offline"`` or a pretrained pyannote pipeline name (with ``hub_token``).
    chunk_length : float or ChunkOptions, optional
        Preferred chunk length in seconds (20 s by default).
    classifier : str or callable, optional
        IC/OOC classifier name or object; the default offline classifier otherwise.
    party : path, optional
        Party file (YAML) naming the game master and the characters.
    """
    options = RunOptions(
        chunk=ChunkOptions.from_value(chunk_length),
        transcribe=TranscribeOptions(model=whisper_model, device=device, language=language),
        diarize=DiarizeOptions(
            pipeline=diarization_pipeline,
            num_speakers=num_speakers,
            min_speakers=min_speakers,
            max_speakers=max_speakers,
            device=device,
            token=hub_token,
        ),
        classifier=classifier,
        party=os.fspath(party) if party is not None else None,
    )
    session = Session.create(audio, session_id=session_id, out_dir=out_dir, options=options)
    return session.start(progress=progress) if background else session.run(progress=progress)


def open_session(directory: os.PathLike[str] | str) -> Session:
    """Reopen a session directory written by an earlier run."""
    return Session.open(directory)


def serve(session: Session | os.PathLike[str] | str, **options: Any) -> ServerHandle:
    """Serve a session's live events over WebSocket and SSE in the background; see :func:`livereview.server.serve`.

    ``livereview.serve(session, port=0)`` returns a running :class:`~livereview.server.ServerHandle`
    (``.url``, ``.stop()``), bound to 127.0.0.1 unless ``host`` and tokens say otherwise.
    """
    from livereview.server import serve as serve_session

    return serve_session(session, **options)


def review(session: Session | os.PathLike[str] | str, **options: Any) -> Any:
    """Display the live review of a session in Jupyter; see :func:`livereview.widgets.review`."""
    from livereview.widgets import review as review_session

    return review_session(session, **options)
