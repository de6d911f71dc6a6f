"""Sessions that reopen anywhere: where a session's recording and party file are now.

A session directory records its recording's absolute path, its path relative to the
session directory, and its SHA-256; the party file is copied into the directory
(``party.yaml``, its hash recorded). Reopened from another folder or machine, the
recording is looked for at its recorded path, relative to the session directory,
then by name and hash next to the session directory and in the working directory; a
recording given with ``open_session(..., audio=...)`` must have the recorded hash.
Sessions written before these records existed fall back the same way, with one
warning naming the fix.
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path
from typing import Any

from livereview.stages.audio import file_hash

logger = logging.getLogger(__name__)

#: Name of the party file's copy inside a session directory.
PARTY_COPY = "party.yaml"


def recording_record(path: Path, directory: Path) -> dict[str, str]:
    """Where a recording is, as a session directory records it: absolute and relative to the directory."""
    located = path.resolve()
    return {"path": str(located), "relative_path": os.path.relpath(located, directory.resolve())}


def copy_party(party: os.PathLike[str] | str, directory: Path) -> dict[str, str]:
    """Copy the party file into the session directory; the record kept in ``metadata.json``."""
    source = Path(party).resolve()
    shutil.copyfile(source, directory / PARTY_COPY)
    return {"source": str(source), "file": PARTY_COPY, "sha256": file_hash(source)}


def locate_recording(metadata: dict[str, Any], directory: Path, given: os.PathLike[str] | str | None = None) -> Path:
    """The session's recording where it is now (its recorded path when it cannot be found).

    Raises
    ------
    FileNotFoundError
        ``given`` does not exist.
    ValueError
        ``given`` is another recording (its hash differs from the recorded one).
    """
    audio = metadata["audio"]
    recorded = Path(audio["path"])
    digest = audio.get("sha256")
    if given is not None:
        path = Path(given).expanduser()
        if not path.is_file():
            msg = f"recording {path} not found"
            raise FileNotFoundError(msg)
        if digest and not audio.get("following") and file_hash(path) != digest:
            msg = (
                f"{path} is not the recording of session {metadata['session_id']!r} "
                f"(its SHA-256 differs from {digest[:12]}...); give the file the session was made from"
            )
            raise ValueError(msg)
        return path.resolve()
    if recorded.is_file():
        return recorded
    candidates = []
    if audio.get("relative_path"):
        candidates.append(directory / audio["relative_path"])
    for folder in (directory, directory.parent, directory.parent.parent, Path.cwd()):
        candidates.append(folder / recorded.name)
    for candidate in candidates:
        if candidate.is_file() and (digest is None or file_hash(candidate) == digest):
            logger.info("session %s: its recording moved to %s", metadata["session_id"], candidate)
            return candidate.resolve()
    logger.warning(
        "session %s: its recording %s is not there any more (nor next to the session); results open, "
        "playback and reruns need it: reopen with open_session(%r, audio='<where it is now>')",
        metadata["session_id"],
        recorded,
        str(directory),
    )
    return recorded


def locate_party(metadata: dict[str, Any], directory: Path, given: str | None) -> Path | None:
    """The party file to read: the session's own copy, else the path it was run with, tried from here."""
    record = metadata.get("party") or {"file": PARTY_COPY}
    if (directory / record["file"]).is_file():
        return directory / record["file"]
    if given is None:
        return None
    path = Path(given)
    folders = (directory, *directory.parents)
    candidates = [path] if path.is_absolute() else [path, *(folder / path for folder in folders)]
    found = next((candidate for candidate in candidates if candidate.is_file()), None)
    if found is None:
        logger.warning(
            "session %s: its party file %s was not found from %s nor from the session directory; "
            "the session opens without it. Copy it into %s as %s to keep it with the session",
            metadata["session_id"],
            given,
            Path.cwd(),
            directory,
            PARTY_COPY,
        )
    elif found != path:
        logger.warning(
            "session %s: its party file %s was found at %s; copy it into %s as %s to keep it with the session",
            metadata["session_id"],
            given,
            found,
            directory,
            PARTY_COPY,
        )
    return found
