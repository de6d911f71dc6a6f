"""The merged view: the model's segment table with the operators' overrides on top.

Everything downstream (widgets, exports, snippets, scenes, knowledge, the server's
snapshot) reads this view, never the base table alone. Building it is vectorized: the
current override values are flattened into arrays and written column by column with
positional assignment, so 20,000 segments with 50,000 overridden cells take a few tens
of milliseconds.

The view's columns and dtypes are frozen in :data:`VIEW_SCHEMA`, the one contract
between the view and its consumers: :func:`conform_view` gives a view exactly that
shape, and each consumer checks the columns it reads with :func:`require_view_columns`.
"""

from __future__ import annotations

import bisect
import itertools
from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from livereview.core.corrections import OVERRIDDEN_COLUMN, apply_corrections, base_ids
from livereview.core.segments import BASE_DEFAULTS, OVERRIDABLE_FIELDS

#: Suffix of the columns holding the model's values when ``show_base=True``.
BASE_SUFFIX = "_base"

#: The merged view, column by column, in order: name -> pandas dtype. ``str`` columns are
#: pandas' string dtype with NaN for a missing value; the index is the ``segment_id``.
#:
#: ============================  =========  ==================================================
#: column                        dtype      holds
#: ============================  =========  ==================================================
#: ``session_id``                str        the session
#: ``segment_id``                str        stable id ``c<chunk>-s<index>`` (also the index)
#: ``chunk_id``                  int64      the chunk the segment came from
#: ``start``, ``end``            float64    seconds on the recording
#: ``text``                      str        transcript (corrected)
#: ``words``                     object     list of word dicts (start, end, word, probability)
#: ``asr_confidence``            float64    mean word probability
#: ``speaker_id``                str        speaker (corrected), NaN before diarization
#: ``speaker_confidence``        float64    share of the segment the speaker covers
#: ``ic_ooc``                    str        IC, OOC or MIXED (corrected)
#: ``ic_ooc_confidence``         float64    classifier probability
#: ``segment_type``              str        one of ``core.segments.SEGMENT_TYPES``
#: ``character_tag``             str        character, NPC or DM (corrected); "" for none
#: ``status``                    str        transcribed, diarized, classified, needs attention
#: ``asr_model`` ...             str        model identifiers (ASR, diarization, classifier)
#: ``confidence_flag``           bool       an operator marked the segment uncertain
#: ``overridden``                object     tuple of the corrected field names
#: ============================  =========  ==================================================
VIEW_SCHEMA: dict[str, str] = {
    "session_id": "str",
    "segment_id": "str",
    "chunk_id": "int64",
    "start": "float64",
    "end": "float64",
    "text": "str",
    "words": "object",
    "asr_confidence": "float64",
    "speaker_id": "str",
    "speaker_confidence": "float64",
    "ic_ooc": "str",
    "ic_ooc_confidence": "float64",
    "segment_type": "str",
    "character_tag": "str",
    "status": "str",
    "asr_model": "str",
    "diarization_model": "str",
    "classifier": "str",
    "confidence_flag": "bool",
    OVERRIDDEN_COLUMN: "object",
}


class ViewSchemaError(ValueError):
    """A table handed to a consumer of the merged view is not shaped like :data:`VIEW_SCHEMA`."""


def conform_view(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with exactly the columns of :data:`VIEW_SCHEMA`, in order, each of its dtype.

    Columns the schema does not name (``<field>_base``, ``disagreements``) stay where they are
    when the schema's columns are in order, else they follow them. Only columns of another
    dtype are converted, so a conforming view costs nothing.

    Raises
    ------
    ViewSchemaError
        A schema column is missing, or its values cannot take the schema's dtype.
    """
    missing = [name for name in VIEW_SCHEMA if name not in frame.columns]
    if missing:
        msg = f"the merged view lacks columns {missing}; it must have {list(VIEW_SCHEMA)}"
        raise ViewSchemaError(msg)
    if [name for name in frame.columns if name in VIEW_SCHEMA] != list(VIEW_SCHEMA):
        frame = frame[[*VIEW_SCHEMA, *(name for name in frame.columns if name not in VIEW_SCHEMA)]]
    changed = {name: dtype for name, dtype in VIEW_SCHEMA.items() if frame[name].dtype != dtype}
    if not changed:
        return frame
    frame = frame.copy()
    for name, dtype in changed.items():
        try:
            frame[name] = frame[name].fillna(False).astype(bool) if dtype == "bool" else frame[name].astype(dtype)
        except (TypeError, ValueError) as error:
            msg = f"merged view column {name!r} cannot be {dtype}: {error}"
            raise ViewSchemaError(msg) from error
    return frame


def require_view_columns(frame: pd.DataFrame, columns: Iterable[str], *, consumer: str) -> None:
    """Check that ``frame`` has the merged-view ``columns`` that ``consumer`` reads.

    Raises
    ------
    ViewSchemaError
        A column is missing from ``frame``, or is not part of :data:`VIEW_SCHEMA` at all
        (a consumer may read only what the schema promises).
    """
    columns = list(columns)
    outside = [name for name in columns if name not in VIEW_SCHEMA]
    if outside:
        msg = f"{consumer} reads {outside}, which the merged view does not promise; use {list(VIEW_SCHEMA)}"
        raise ViewSchemaError(msg)
    missing = [name for name in columns if name not in frame.columns]
    if missing:
        msg = f"{consumer} needs the merged view's columns {missing}; pass session.view() (see VIEW_SCHEMA)"
        raise ViewSchemaError(msg)


def merged_view(
    segments: pd.DataFrame,
    overrides: Mapping[str, Mapping[str, Any]],
    *,
    show_base: bool = False,
) -> pd.DataFrame:
    """Base results with the current overrides applied, boundaries included.

    The corrections are laid over the table by
    :func:`livereview.core.corrections.apply_corrections`: field values, adjusted start
    and end, split segments (``<id>.1``, ``<id>.2``) and merged ones (``<first>+<second>``).

    Parameters
    ----------
    segments : pandas.DataFrame
        The base segment table, index = ``segment_id`` (unique).
    overrides : mapping
        ``segment_id -> field -> value``, as :meth:`OverrideStore.current_values`
        returns. Segments not in ``segments`` are ignored (a rerun may have replaced
        them).
    show_base : bool
        Add a ``<field>_base`` column beside each overridable field with the
        model's value (for a split or merged segment, that of the first segment it
        comes from).

    Returns
    -------
    pandas.DataFrame
        A copy of ``segments`` with overridden cells replaced, a ``confidence_flag``
        column (False unless set) and an ``overridden`` column (tuple of the
        overridden field names, empty for untouched rows). Rows without overrides
        keep every original value; with boundary corrections the rows are in time order.
    """
    view = apply_corrections(segments, overrides)
    if show_base:
        same = view.index.equals(segments.index)
        origin = view.index if same else pd.Index([base_ids(segment_id)[0] for segment_id in view.index])
        for name in OVERRIDABLE_FIELDS:
            model = segments[name] if name in segments.columns else pd.Series(BASE_DEFAULTS.get(name), segments.index)
            view.insert(view.columns.get_loc(name) + 1, f"{name}{BASE_SUFFIX}", model.reindex(origin).to_numpy())
    return view


def corrected_turns(
    turns: pd.DataFrame, segments: pd.DataFrame, overrides: Mapping[str, Mapping[str, Any]]
) -> pd.DataFrame:
    """Speaker turns with the operators' speaker corrections laid over them, and no speech left unlabelled.

    A segment whose speaker an operator corrected hands its span to the new speaker: the
    parts of the model speaker's turns inside it take the new name (and are dropped when
    the speaker was cleared); other speakers' turns overlapping it stay as they are, so
    overlapped speech is kept. When no turn of the model speaker touches the segment, its
    span becomes a turn of its own, as does a segment with a speaker that no turn touches.
    Speech no segment covers keeps its turns.

    Parameters
    ----------
    turns : pandas.DataFrame
        ``start``, ``end``, ``speaker_id``: the session's turns (``Session.diarization``).
    segments, overrides
        As for :func:`merged_view`.

    Returns
    -------
    pandas.DataFrame
        ``start``, ``end``, ``speaker_id``, sorted by start (then end, speaker).
    """
    view = merged_view(segments, overrides, show_base=True)
    starts, ends = view["start"].to_numpy(dtype=float), view["end"].to_numpy(dtype=float)
    new, old = _labels(view["speaker_id"]), _labels(view[f"speaker_id{BASE_SUFFIX}"])
    by_speaker: dict[str, list[tuple[float, float, str]]] = defaultdict(list)  # model speaker -> corrected spans
    for index in np.flatnonzero(new != old).tolist():
        by_speaker[old[index]].append((float(starts[index]), float(ends[index]), new[index]))
    corrections = {speaker: _Spans(sorted(spans)) for speaker, spans in by_speaker.items()}
    result: list[tuple[float, float, str]] = []
    for start, end, speaker in zip(turns["start"], turns["end"], _labels(turns["speaker_id"]), strict=True):
        spans = corrections.get(speaker)
        result += spans.relabel(float(start), float(end), speaker) if spans else [(float(start), float(end), speaker)]
    for spans in corrections.values():
        result += spans.untouched()
    result += _untouched_segments(starts, ends, new, result)
    frame = pd.DataFrame(result, columns=["start", "end", "speaker_id"])
    return frame.sort_values(["start", "end", "speaker_id"], ignore_index=True)


class _Spans:
    """The corrected spans of one model speaker, sorted: ``(start, end, new speaker)``."""

    def __init__(self, spans: list[tuple[float, float, str]]) -> None:
        self.spans = spans
        self.starts = [start for start, _, _ in spans]
        self.reach = list(itertools.accumulate((end for _, end, _ in spans), max))  # furthest end so far
        self.touched: set[int] = set()

    def relabel(self, start: float, end: float, speaker: str) -> list[tuple[float, float, str]]:
        """The pieces of a turn of the model speaker: inside a corrected span, the new speaker's."""
        pieces, cursor = [], start
        for index in range(bisect.bisect_right(self.reach, start), bisect.bisect_left(self.starts, end)):
            first, last, new = self.spans[index]
            first, last = max(first, cursor), min(last, end)
            if last <= first:
                continue
            self.touched.add(index)
            if first > cursor:
                pieces.append((cursor, first, speaker))
            if new:
                pieces.append((first, last, new))
            cursor = last
        if cursor < end:
            pieces.append((cursor, end, speaker))
        return pieces

    def untouched(self) -> list[tuple[float, float, str]]:
        """Corrected spans with a speaker that no turn of the model speaker touched."""
        return [
            span for index, span in enumerate(self.spans) if index not in self.touched and span[2] and span[1] > span[0]
        ]


def _untouched_segments(
    starts: np.ndarray, ends: np.ndarray, speakers: np.ndarray, turns: list[tuple[float, float, str]]
) -> list[tuple[float, float, str]]:
    """Segments with a speaker that no turn touches, as turns of their own."""
    ordered = sorted(turns)
    turn_starts = np.array([start for start, _, _ in ordered], dtype=float)
    reach = np.maximum.accumulate(np.array([end for _, end, _ in ordered], dtype=float)) if ordered else turn_starts
    before = np.searchsorted(turn_starts, ends, side="left")  # turns starting before each segment ends
    touched = (before > 0) & (reach[np.maximum(before - 1, 0)] > starts) if ordered else np.zeros(len(starts), bool)
    keep = (~touched) & (speakers != "") & (ends > starts)
    return [(float(starts[i]), float(ends[i]), speakers[i]) for i in np.flatnonzero(keep).tolist()]


def _labels(column: pd.Series) -> np.ndarray:
    """Speaker labels as strings, ``""`` where missing."""
    return np.array(["" if pd.isna(value) else str(value) for value in column.astype(object)], dtype=object)
