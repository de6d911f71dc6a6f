"""The widgets' front-end files (``widgets/`` in the repository, ``livereview.static`` once installed)."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

#: The package the front-end files ship in.
STATIC_PACKAGE = "livereview.static"


def asset_path(name: str) -> Path:
    """Path of a front-end file (``review.js``, ``review.css``, ``playback.js``)."""
    found = Path(str(files(STATIC_PACKAGE) / name))
    if not found.is_file():
        msg = f"front-end file {name!r} is missing from {found.parent}; reinstall livereview (pip install -e .)"
        raise FileNotFoundError(msg)
    return found
