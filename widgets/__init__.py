"""Front-end code of the live review widgets: plain ES modules and CSS, no bundler.

The top-level ``widgets/`` folder ships inside the package as ``livereview.static``.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

__all__ = ["path"]


def path(name: str) -> Path:
    """Path of a front-end file shipped in ``livereview.static`` (``review.js``, ``review.css``, ...)."""
    found = Path(str(files(__name__) / name))
    if not found.is_file():
        msg = f"front-end file {name!r} is missing from {found.parent}; reinstall livereview (pip install -e .)"
        raise FileNotFoundError(msg)
    return found
