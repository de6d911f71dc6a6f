"""Which recordings a batch runs, and with which options: paths, a glob, a folder, or a manifest.

A manifest (CSV file or DataFrame) has a ``path`` column and, optionally,
``session_id``, ``num_speakers``, ``party`` and ``language`` per recording; what a row
leaves empty comes from the batch's own run options.
"""

from __future__ import annotations

import glob
import math
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from livereview.review.checks import AUTO_SPEAKERS, InputError, default_session_id

#: Columns a manifest may have.
MANIFEST_COLUMNS = ("path", "session_id", "num_speakers", "party", "language")
#: File endings a folder of recordings is searched for.
AUDIO_SUFFIXES = (".wav", ".flac", ".mp3", ".m4a", ".ogg", ".opus", ".webm", ".mkv", ".mka", ".mp4", ".aac")

Recordings = str | os.PathLike[str] | Iterable[str | os.PathLike[str]] | pd.DataFrame


@dataclass(frozen=True)
class BatchItem:
    """One recording of a batch: where it is, its session id, and the run options it overrides."""

    path: Path
    session_id: str
    options: dict[str, Any] = field(default_factory=dict)

    def run_options(self, shared: Mapping[str, Any]) -> dict[str, Any]:
        """The options of :func:`livereview.run` for this recording: the batch's, then the row's."""
        return dict(shared) | self.options


def batch_items(recordings: Recordings) -> list[BatchItem]:
    """The recordings of a batch, one item each, in a stable order.

    Parameters
    ----------
    recordings : path, glob, folder, list of paths, CSV manifest or DataFrame
        What to run.

    Raises
    ------
    InputError
        A manifest with unknown columns or no ``path`` column, a folder or glob that
        matches no recording, or two recordings with one session id.
    """
    if isinstance(recordings, pd.DataFrame):
        items = _manifest_items(recordings, Path.cwd())
    elif isinstance(recordings, str | os.PathLike):
        items = _items_of(Path(recordings))
    else:
        items = [item for entry in recordings for item in _items_of(Path(entry))]
    repeated = sorted({i.session_id for i in items if sum(j.session_id == i.session_id for j in items) > 1})
    if repeated:
        raise InputError(
            [f"several recordings would share session id {sid!r}; give each a session_id" for sid in repeated]
        )
    return items


def _items_of(path: Path) -> list[BatchItem]:
    """A recording, the recordings of a folder or a glob, or the rows of a CSV manifest."""
    if path.suffix.lower() == ".csv" and path.is_file():
        return _manifest_items(pd.read_csv(path, dtype=str, keep_default_na=False), path.parent)
    if path.is_dir():
        found = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES)
        if not found:
            raise InputError([f"folder {path} holds no recording (looked for {', '.join(AUDIO_SUFFIXES)})"])
        return [BatchItem(p, default_session_id(p)) for p in found]
    if glob.has_magic(str(path)):
        found = sorted(Path(p) for p in glob.glob(str(path)))  # noqa: PTH207 (absolute patterns)
        if not found:
            raise InputError([f"{path} matches no file"])
        return [BatchItem(p, default_session_id(p)) for p in found]
    return [BatchItem(path, default_session_id(path))]  # a missing file ends as a failed row, not here


def _manifest_items(frame: pd.DataFrame, base: Path) -> list[BatchItem]:
    """Items from a manifest; relative paths are taken from the manifest's folder."""
    unknown = sorted(set(frame.columns) - set(MANIFEST_COLUMNS))
    problems = [f"manifest column {name!r} is unknown; use {MANIFEST_COLUMNS}" for name in unknown]
    if "path" not in frame.columns:
        problems.append(f"the manifest needs a 'path' column (columns: {MANIFEST_COLUMNS})")
    if problems:
        raise InputError(problems)
    items = []
    for number, row in enumerate(frame.to_dict("records"), start=2):  # line 1 is the header
        values = {key: value for key, value in row.items() if not _empty(value)}
        path = Path(str(values.pop("path")))
        path = path if path.is_absolute() else base / path
        session_id = str(values.pop("session_id", default_session_id(path)))
        if "num_speakers" in values and values["num_speakers"] != AUTO_SPEAKERS:
            try:
                values["num_speakers"] = int(float(values["num_speakers"]))
            except ValueError:
                message = (
                    f"manifest row {number}: num_speakers {values['num_speakers']!r} "
                    f"is not a number nor {AUTO_SPEAKERS!r}"
                )
                raise InputError([message]) from None
        if "party" in values:
            party = Path(str(values["party"]))
            values["party"] = str(party if party.is_absolute() else base / party)
        items.append(BatchItem(path, session_id, values))
    return items


def _empty(value: Any) -> bool:
    if isinstance(value, float):
        return math.isnan(value)
    return value is None or (isinstance(value, str) and not value.strip())
