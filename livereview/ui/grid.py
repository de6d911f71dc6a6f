"""The segment grid: its row format on the wire and the anywidget that shows the rows.

Rows travel as lists in the order of :data:`FIELDS`. A row is built from the merged
view (:func:`livereview.review.view.merged_view`): the model's values with the
operators' corrections on top, ``edited`` listing the corrected fields. The grid's
front end is ``widgets/review.js`` and ``widgets/review.css``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

import anywidget
import pandas as pd
import traitlets as t

from livereview.core.events import SegmentPayload
from livereview.core.palette import css_variables
from livereview.core.roles import VIEWER
from livereview.core.segments import Segment
from livereview.review.view import OVERRIDDEN_COLUMN, merged_view
from livereview.ui.assets import asset_path

#: Columns of a row on the wire, in order (rows travel as lists).
FIELDS = (
    "id",
    "chunk",
    "start",
    "end",
    "speaker",
    "ic_ooc",
    "character",
    "text",
    "asr",
    "spk",
    "icc",
    "status",
    "edited",
    "flag",
)
#: Segment column -> row column, for the columns a row takes from the merged view.
ROW_COLUMNS = {
    "segment_id": "id",
    "chunk_id": "chunk",
    "start": "start",
    "end": "end",
    "speaker_id": "speaker",
    "ic_ooc": "ic_ooc",
    "character_tag": "character",
    "text": "text",
    "asr_confidence": "asr",
    "speaker_confidence": "spk",
    "ic_ooc_confidence": "icc",
    "status": "status",
}


def base_row(segment: Segment | SegmentPayload) -> dict[str, Any]:
    """A segment's model values, by segment column (what :func:`merged_rows` merges)."""
    return {name: getattr(segment, name) for name in ROW_COLUMNS}


def merged_rows(
    bases: Iterable[Mapping[str, Any]], corrections: Mapping[str, Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """Grid rows of ``bases`` (see :func:`base_row`) with ``corrections`` applied, by the merged view."""
    frame = pd.DataFrame.from_records(list(bases), columns=list(ROW_COLUMNS))
    frame.index = pd.Index(frame["segment_id"], name=None)
    view = merged_view(frame, corrections)
    columns = [*ROW_COLUMNS, OVERRIDDEN_COLUMN, "confidence_flag"]
    return [_row(dict(zip(columns, values, strict=True))) for values in view[columns].itertuples(index=False)]


def _row(values: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "id": values["segment_id"],
        "chunk": int(values["chunk_id"]),
        "start": _number(values["start"]) or 0.0,
        "end": _number(values["end"]) or 0.0,
        "speaker": _text(values["speaker_id"]),
        "ic_ooc": _text(values["ic_ooc"]),
        "character": _text(values["character_tag"]),
        "text": _text(values["text"]) or "",
        "asr": _number(values["asr_confidence"]),
        "spk": _number(values["speaker_confidence"]),
        "icc": _number(values["ic_ooc_confidence"]),
        "status": _text(values["status"]),
        "edited": list(values[OVERRIDDEN_COLUMN]),
        "flag": bool(values["confidence_flag"]),
    }


def row_values(row: Mapping[str, Any]) -> list[Any]:
    """A row as the list sent to the browser (columns :data:`FIELDS`)."""
    return [row[name] for name in FIELDS]


def sorted_rows(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows in time order (ties by id)."""
    return sorted(rows, key=lambda r: (r["start"], r["id"]))


def _number(value: Any, digits: int = 3) -> float | None:
    """A JSON-safe rounded float, or None for missing and non-finite values."""
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return round(number, digits) if math.isfinite(number) else None


def _text(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return None
    return str(value)


class ReviewGrid(anywidget.AnyWidget):
    """The virtualized segment grid with its status bar, filters and edit controls.

    Traits hold the small state every view shares (run status, position, completed
    chunks, speakers, selection, notices); rows travel as custom messages. Only the
    review's updater thread writes these traits.
    """

    _esm = asset_path("review.js")
    _css = asset_path("review.css")

    session_id = t.Unicode("").tag(sync=True)
    user = t.Unicode("").tag(sync=True)
    role = t.Unicode(VIEWER).tag(sync=True)
    #: Whether this user may correct segments (editor or admin).
    can_edit = t.Bool(False).tag(sync=True)
    #: Run status: created, running, complete or failed.
    status = t.Unicode("created").tag(sync=True)
    #: How far processing has reached, in seconds.
    position = t.Float(0.0).tag(sync=True)
    #: The recording's length, in seconds.
    duration = t.Float(0.0).tag(sync=True)
    #: Chunks whose results are final: only their segments can be edited.
    completed_chunks = t.List(t.Int()).tag(sync=True)
    #: Speakers offered by the speaker dropdown.
    speakers = t.List(t.Unicode()).tag(sync=True)
    #: Characters offered by the character autocomplete (party characters, then tags in use).
    characters = t.List(t.Unicode()).tag(sync=True)
    #: Selected segment ids (from clicks in the grid or a range brushed on the timeline).
    selection = t.List(t.Unicode()).tag(sync=True)
    #: ``[start, end]`` in seconds brushed on the timeline, or empty.
    time_range = t.List(t.Float()).tag(sync=True)
    #: The last message for the operator: ``{"id", "level", "text"}`` (errors are never dropped).
    notice = t.Dict().tag(sync=True)
    #: Height of the scrolling rows area, in pixels.
    height = t.Int(420).tag(sync=True)
    #: One line of run metrics for the status bar (real-time factor, events, drops).
    metrics = t.Unicode("").tag(sync=True)
    #: Degraded conditions to show as a banner (empty when all is well).
    health = t.List(t.Unicode()).tag(sync=True)
    #: The review's colours as CSS variables (``--lr-ic``...), from :mod:`livereview.core.palette`.
    palette = t.Dict(css_variables()).tag(sync=True)


def metrics_line(metrics: dict[str, Any]) -> str:
    """The status bar's summary of :meth:`Session.metrics`: speed, events and drops."""
    run = metrics.get("events", {}).get("last_run", {})
    factors = run.get("real_time_factors") or metrics.get("real_time_factors") or {}
    total = factors.get("total", sum(factors.values()) if factors else None)
    events = metrics.get("events", {})
    parts = [f"real-time factor {total:.2f}"] if total else []
    parts.append(f"{events.get('emitted') or 0} events ({events.get('per_second') or 0:.1f}/s)")
    parts.append(f"{events.get('dropped') or 0} dropped")
    return " · ".join(parts)
