"""The on-disk cache of what the stages derive once from shipped models and data.

Fitted classifier heads and the CAM++ network exported for ONNX Runtime live here,
each named by a hash of what it was made from, so a changed input is never read
from a stale file. ``make setup`` fills it; a run fills what is missing.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO

#: Environment variable that moves the cache (default ``~/.cache/livereview``).
CACHE_DIR_VARIABLE = "LIVEREVIEW_CACHE_DIR"


def cache_dir() -> Path:
    """Where derived files are cached: ``$LIVEREVIEW_CACHE_DIR`` or ``~/.cache/livereview``."""
    configured = os.environ.get(CACHE_DIR_VARIABLE)
    return Path(configured) if configured else Path.home() / ".cache" / "livereview"


def write_atomically(path: Path, write: Callable[[IO[bytes]], None]) -> None:
    """Write ``path`` through ``write(handle)`` into a temporary file beside it, then move it in place.

    A reader never sees half a file, and two processes filling the same entry at once
    each move in a whole one.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=path.parent, suffix=path.suffix, delete=False) as handle:
        temporary = Path(handle.name)
        try:
            write(handle)
        except BaseException:
            handle.close()
            temporary.unlink(missing_ok=True)
            raise
    temporary.replace(path)
