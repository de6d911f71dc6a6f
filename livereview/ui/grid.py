"""The segment grid: its row format on the wire, the rows a review holds, and the anywidget.

Rows travel as lists in the order of :data:`FIELDS`. A row is built from the merged
view (:func:`livereview.review.view.merged_view`): the model's values with the
operators' corrections on top, ``edited`` listing the corrected fields. Split and
merged segments are rows of their own (``c00003-s002.1``, ``c00003-s002+c00003-s003``),
in place of the segments they come from. The grid's front end is ``widgets/review.js``
and ``widgets/review.css``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

import anywidget
import numpy as np
import pandas as pd
import traitlets as t

from livereview.core.corrections import STRUCTURE_FIELDS, base_ids
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
    """Grid rows of ``bases`` (see :func:`base_row`) with ``corrections`` applied, by the merged view.

    Built column by column (20,000 rows in a few tens of milliseconds): numbers rounded to
    the millisecond, missing and non-finite values as None.
    """
    frame = pd.DataFrame.from_records(list(bases), columns=list(ROW_COLUMNS))
    frame.index = pd.Index(frame["segment_id"], name=None)
    view = merged_view(frame, corrections)
    columns = {
        "id": _texts(view["segment_id"]),
        "chunk": view["chunk_id"].astype("int64").tolist(),
        "start": _numbers(view["start"], missing=0.0),
        "end": _numbers(view["end"], missing=0.0),
        "speaker": _texts(view["speaker_id"]),
        "ic_ooc": _texts(view["ic_ooc"]),
        "character": _texts(view["character_tag"]),
        "text": _texts(view["text"], missing=""),
        "asr": _numbers(view["asr_confidence"]),
        "spk": _numbers(view["speaker_confidence"]),
        "icc": _numbers(view["ic_ooc_confidence"]),
        "status": _texts(view["status"]),
        "edited": _field_lists(view[OVERRIDDEN_COLUMN]),
        "flag": view["confidence_flag"].fillna(False).astype(bool).tolist(),
    }
    return [dict(zip(columns, values, strict=True)) for values in zip(*columns.values(), strict=True)]


def _field_lists(column: pd.Series) -> list[list[str]]:
    """The corrected fields of each row as a list; rows with the same fields share one (never changed)."""
    shared: dict[tuple[str, ...], list[str]] = {}
    return [shared.setdefault(fields, list(fields)) for fields in column.tolist()]


def _numbers(column: pd.Series, missing: float | None = None) -> list[float | None]:
    """JSON-safe numbers rounded to the millisecond; ``missing`` for missing and non-finite values."""
    values = pd.to_numeric(column, errors="coerce").to_numpy(dtype=np.float64)
    return _with_missing(np.round(values, 3).tolist(), ~np.isfinite(values), missing)


def _texts(column: pd.Series, missing: str | None = None) -> list[str | None]:
    """Strings, ``missing`` for missing values (None, NaN, NA)."""
    absent = column.isna().to_numpy()
    values = column.astype(object).to_numpy()
    if not all(isinstance(v, str) for v in values[~absent]):
        values = np.array([str(v) for v in values], dtype=object)
    return _with_missing(values.tolist(), absent, missing)


def _with_missing(values: list[Any], absent: np.ndarray, missing: Any) -> list[Any]:
    """``values`` with ``missing`` where ``absent`` is true."""
    for index in np.flatnonzero(absent).tolist():
        values[index] = missing
    return values


def row_values(row: Mapping[str, Any]) -> list[Any]:
    """A row as the list sent to the browser (columns :data:`FIELDS`)."""
    return [row[name] for name in FIELDS]


def sorted_rows(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows in time order (ties by id)."""
    return sorted(rows, key=lambda r: (r["start"], r["id"]))


class GridRows:
    """The rows one review holds: the model's values per segment, and the rows as corrected and as sent.

    Corrections are merged segment by segment; a split or merge re-merges every segment
    it links, and drops the rows it replaced. Only the review's updater thread uses it.
    """

    def __init__(self) -> None:
        #: The model's values per segment id (:func:`base_row`).
        self.base: dict[str, dict[str, Any]] = {}
        #: Rows as corrected, by row id.
        self.rows: dict[str, dict[str, Any]] = {}
        #: Rows as sent (:func:`row_values`), by row id.
        self.wire: dict[str, list[Any]] = {}
        #: Rows showing corrections.
        self.corrected: set[str] = set()
        #: The corrections merged last (segment id -> field -> value).
        self.corrections: dict[str, dict[str, Any]] = {}
        self._order: list[str] = []
        self._unsorted = False
        self._reshaped: dict[str, set[str]] = defaultdict(set)  # segment id -> its split or merged rows

    def reset(self, bases: Mapping[str, dict[str, Any]], corrections: dict[str, dict[str, Any]]) -> None:
        """Start over from the model's rows ``bases`` (segment id -> :func:`base_row`) and ``corrections``."""
        self.base = dict(bases)
        self.rows, self.wire, self.corrected, self._reshaped = {}, {}, set(), defaultdict(set)
        self._order, self._unsorted = [], False
        self.merge(self.base, corrections)

    def changed(self, corrections: Mapping[str, Mapping[str, Any]]) -> set[str]:
        """Segment ids whose corrections differ from those merged last (both sides of a merge)."""
        old = self.corrections
        ids = {sid for sid in old.keys() | corrections.keys() if old.get(sid) != corrections.get(sid)}
        changed = {b for sid in ids for b in base_ids(sid)}
        for sid in ids:
            for fields in (old.get(sid), corrections.get(sid)):
                if fields and fields.get("merged_into"):
                    changed.update(base_ids(str(fields["merged_into"])))
        return changed

    def merge(
        self, ids: Iterable[str], corrections: dict[str, dict[str, Any]]
    ) -> tuple[list[dict[str, Any]], list[str]]:
        """Merge the corrections of segments ``ids``; the rows merged and the ids of rows now gone.

        Segments a split or merge links to ``ids`` are merged with them.
        """
        family = self._family(set(ids), corrections) & self.base.keys()
        rows = merged_rows((self.base[sid] for sid in family), corrections) if family else []
        fresh = {row["id"] for row in rows}
        gone = sorted(self._built_from(family) - fresh)
        for row_id in gone:
            for sid in base_ids(row_id):
                self._reshaped[sid].discard(row_id)
            del self.rows[row_id], self.wire[row_id]
            self.corrected.discard(row_id)
        if gone:
            dropped = set(gone)
            self._order = [row_id for row_id in self._order if row_id not in dropped]
        for row in rows:
            row_id = row["id"]
            if row_id not in self.rows:
                self._order.append(row_id)
                self._unsorted = True
                bases = base_ids(row_id)
                if bases != [row_id]:
                    for sid in bases:
                        self._reshaped[sid].add(row_id)
            self.rows[row_id], self.wire[row_id] = row, row_values(row)
            if row["edited"]:
                self.corrected.add(row_id)
            else:
                self.corrected.discard(row_id)
        self.corrections = corrections
        return rows, gone

    def rows_from(self, ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        """Copies of the rows built from segments ``ids`` and those a split or merge links to them."""
        family = self._family(set(ids), self.corrections)
        return {row_id: dict(self.rows[row_id]) for row_id in self._built_from(family)}

    def ordered_wire(self) -> list[list[Any]]:
        """Every row as sent, in time order."""
        if self._unsorted:
            self._order.sort(key=lambda row_id: (self.rows[row_id]["start"], row_id))
            self._unsorted = False
        return [self.wire[row_id] for row_id in self._order]

    def _family(self, ids: set[str], corrections: Mapping[str, Mapping[str, Any]]) -> set[str]:
        """``ids`` and every segment a split or merge links to them, now or before."""
        links: dict[str, set[str]] = defaultdict(set)
        for sid, fields in corrections.items():
            if any(fields.get(name) is not None for name in STRUCTURE_FIELDS):
                linked = {*base_ids(sid), *base_ids(str(fields.get("merged_into") or sid))}
                for member in linked:
                    links[member] |= linked
        if not links and not any(self._reshaped.values()):
            return ids
        family, todo = set(), list(ids)
        while todo:
            sid = todo.pop()
            if sid in family:
                continue
            family.add(sid)
            todo.extend(links.get(sid, ()))
            todo.extend(b for row_id in self._reshaped.get(sid, ()) for b in base_ids(row_id))
        return family

    def _built_from(self, ids: Iterable[str]) -> set[str]:
        """The ids of the rows now built from segments ``ids``."""
        return {sid for sid in ids if sid in self.rows} | {r for sid in ids for r in self._reshaped.get(sid, ())}


def speaker_stats(rows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Per speaker: talk time (seconds), rows, and a sample row to play (the longest), most talk first."""
    seconds: dict[str, float] = defaultdict(float)
    count: dict[str, int] = defaultdict(int)
    sample: dict[str, tuple[float, str]] = {}
    for row in rows:
        speaker = row["speaker"]
        if not speaker:
            continue
        length = max(row["end"] - row["start"], 0.0)
        seconds[speaker] += length
        count[speaker] += 1
        if length > sample.get(speaker, (-1.0, ""))[0]:
            sample[speaker] = (length, row["id"])
    return [
        {"speaker": name, "seconds": round(seconds[name], 1), "rows": count[name], "sample": sample[name][1]}
        for name in sorted(seconds, key=lambda s: (-seconds[s], s))
    ]


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
    #: The party's players and game master (the dropdown groups them apart from the speakers found).
    players = t.List(t.Unicode()).tag(sync=True)
    #: Diarized speaker -> player, as :meth:`Session.set_speaker_map` keeps it.
    speaker_map = t.Dict().tag(sync=True)
    #: Per speaker: ``speaker``, talk time ``seconds``, ``rows`` and a ``sample`` row id (:func:`speaker_stats`).
    speaker_stats = t.List(t.Dict()).tag(sync=True)
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
