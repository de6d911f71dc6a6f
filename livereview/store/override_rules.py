"""The rules a correction must follow, checked before anything is written.

A correction names a segment of a completed chunk, as the segments now stand (split
and merged ones included), and a field of
:data:`~livereview.core.corrections.CORRECTION_FIELDS`, with a value of the right kind:
an IC/OOC label, a non-empty text within :data:`MAX_TEXT_CHARS`, a known speaker
(or a new one when allowed), True/False for the "uncertain" flag. Boundaries keep the
segments in time order: a ``start`` or ``end`` (seconds, ``start`` before ``end``) may
shrink a segment or grow it into the gap beside it, never over its neighbour; a
``split`` (``{"word", "time"}``) cuts inside the segment between two of its words; a
``merged_into`` names the segment right before, of the same speaker. A batch is checked
whole, against the segments as they stand before it, and refused whole, with every
problem listed.
"""

from __future__ import annotations

import dataclasses
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from numbers import Real
from typing import Any

import numpy as np
import pandas as pd

from livereview.core.corrections import CORRECTION_FIELDS, STRUCTURE_FIELDS, TIME_FIELDS, apply_corrections, base_ids
from livereview.core.segments import BASE_DEFAULTS, IC_OOC_LABELS

#: Longest text an override may set, in characters.
MAX_TEXT_CHARS = 2000

#: ``(segment_id, field, value)``
Change = tuple[str, str, Any]


class OverrideError(ValueError):
    """An override, batch or log that breaks a rule; nothing was written."""


class ConfirmationRequiredError(OverrideError):
    """A valid batch was not applied because ``confirm=True`` was not passed."""


@dataclass
class EditContext:
    """What the store validates overrides against.

    Parameters
    ----------
    segments : pandas.DataFrame
        The base segment table (index = ``segment_id``, columns
        :data:`livereview.core.segments.SEGMENT_COLUMNS`; the store replaces it with
        :func:`standing_context` when boundaries are involved).
    completed_chunks : set of int
        Chunks whose results are final; only their segments may be overridden.
    known_speakers : set of str
        Speaker ids an override may use without ``allow_new_speaker=True``.
    """

    segments: pd.DataFrame
    completed_chunks: set[int]
    known_speakers: set[str]


def plain_value(value: Any) -> Any:
    """A JSON-ready scalar: numpy scalars unwrapped, NaN and NA as None."""
    if isinstance(value, np.generic):
        value = value.item()
    if value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return None
    return value


def is_missing(value: Any) -> bool:
    """Whether a batch cell is empty (None, NaN, NA)."""
    return plain_value(value) is None


def base_value(segments: pd.DataFrame, segment_id: str, name: str) -> Any:
    """The model's value of a field (its default for a field the table does not carry)."""
    if name not in segments.columns or segment_id not in segments.index:
        return BASE_DEFAULTS.get(name)
    return plain_value(segments.at[segment_id, name])


def moves_boundaries(changes: Sequence[Change], ctx: EditContext) -> bool:
    """Whether ``changes`` set a boundary field or name a segment the model did not make (a part, a merge)."""
    boundary = {*TIME_FIELDS, *STRUCTURE_FIELDS}
    return any(name in boundary or sid not in ctx.segments.index for sid, name, _ in changes)


def standing_context(ctx: EditContext, corrections: Mapping[str, Mapping[str, Any]]) -> EditContext:
    """``ctx`` with the segments as they now stand: :func:`~livereview.core.corrections.apply_corrections`
    of the base table, in time order, split and merged segments included.

    Boundary corrections, and every correction once a session has splits or merges, are
    checked against it.
    """
    return dataclasses.replace(ctx, segments=apply_corrections(ctx.segments, corrections))


def changes_from_frame(frame: pd.DataFrame) -> list[Change]:
    """(segment, field, value) for each filled cell of a batch frame."""
    if "segment_id" in frame.columns:
        ids, values = frame["segment_id"].tolist(), frame.drop(columns="segment_id")
    else:
        ids, values = frame.index.tolist(), frame
    repeated = sorted({str(i) for i, n in Counter(ids).items() if n > 1})
    if repeated:
        msg = f"batch names segments {repeated[:10]} more than once; give one row per segment"
        raise OverrideError(msg)
    names = [str(c) for c in values.columns]
    return [
        (segment_id, name, value)
        for segment_id, row in zip(ids, values.itertuples(index=False, name=None), strict=True)
        for name, value in zip(names, row, strict=True)
        if not is_missing(value)
    ]


def validated_changes(changes: Sequence[Change], ctx: EditContext, allow_new_speaker: bool) -> list[Change]:
    """The changes with plain values, or one :class:`OverrideError` listing every problem."""
    problems, valid = [], []
    times = {(segment_id, name): plain_value(raw) for segment_id, name, raw in changes if name in TIME_FIELDS}
    for segment_id, name, raw in changes:
        value = plain_value(raw)
        problem = _problem(segment_id, name, value, ctx, allow_new_speaker, times)
        if problem:
            problems.append(f"segment {segment_id!r}, field {name!r}: {problem}")
        else:
            valid.append((segment_id, name, value))
    if problems:
        shown = "\n  ".join(problems[:10])
        more = f"\n  ... and {len(problems) - 10} more" if len(problems) > 10 else ""
        msg = f"{len(problems)} override(s) refused, nothing written:\n  {shown}{more}"
        raise OverrideError(msg)
    return valid


def _problem(
    segment_id: str,
    name: str,
    value: Any,
    ctx: EditContext,
    allow_new_speaker: bool,
    times: Mapping[tuple[str, str], Any],
) -> str | None:
    """Why one override is refused, or None."""
    if name not in CORRECTION_FIELDS:
        return f"not an overridable field; use one of {CORRECTION_FIELDS}"
    if segment_id not in ctx.segments.index:
        return _unknown_segment(segment_id, ctx.segments)
    chunk = int(ctx.segments.at[segment_id, "chunk_id"])
    if chunk not in ctx.completed_chunks:
        return f"chunk {chunk} is not completed yet; correct it once its results are final"
    if name in TIME_FIELDS:
        return _time_problem(segment_id, value, ctx.segments, times)
    if name == "split":
        return _split_problem(segment_id, value, ctx.segments)
    if name == "merged_into":
        return _merge_problem(segment_id, value, ctx)
    if name == "confidence_flag":
        return None if isinstance(value, bool) else f"must be True or False, got {value!r}"
    if name == "ic_ooc":
        return None if value in IC_OOC_LABELS else f"{value!r} is not one of {IC_OOC_LABELS}"
    if not isinstance(value, str):
        return f"must be a string, got {type(value).__name__} {value!r}"
    if name == "text":
        return _text_problem(value)
    if name == "speaker_id":
        return _speaker_problem(value, ctx.known_speakers, allow_new_speaker)
    return None


def _unknown_segment(segment_id: str, segments: pd.DataFrame) -> str:
    now = [str(s) for s in segments.index if segment_id in base_ids(str(s)) and s != segment_id]
    if now:
        return f"this segment was split or merged and is now {now[:4]}; correct those instead"
    return f"unknown segment; the session has {len(segments)} segments, check the id"


def _seconds(value: Any) -> float | None:
    """``value`` as seconds when it is a finite, non-negative number, else None."""
    if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value) or value < 0:
        return None
    return float(value)


def _neighbours(segment_id: str, segments: pd.DataFrame) -> tuple[pd.Series | None, pd.Series | None]:
    """The segments right before and right after ``segment_id`` in time order."""
    position = segments.index.get_loc(segment_id)
    before = segments.iloc[position - 1] if position > 0 else None
    after = segments.iloc[position + 1] if position + 1 < len(segments) else None
    return before, after


def _time_problem(
    segment_id: str, value: Any, segments: pd.DataFrame, times: Mapping[tuple[str, str], Any]
) -> str | None:
    if _seconds(value) is None:
        return f"must be a time in seconds, a number of 0 or more, got {value!r}"
    row = segments.loc[segment_id]
    start = _seconds(times.get((segment_id, "start"), row["start"]))
    end = _seconds(times.get((segment_id, "end"), row["end"]))
    if start is None or end is None:
        return None  # the other boundary's own problem is reported
    if start >= end:
        return f"start {start:.3f} s must come before end {end:.3f} s"
    before, after = _neighbours(segment_id, segments)
    earliest = min(float(row["start"]), float(before["end"])) if before is not None else 0.0
    if start < earliest - 1e-6:
        return (
            f"start {start:.3f} s would overlap the segment before ({before.name}, ending at "
            f"{float(before['end']):.3f} s); the earliest start is {earliest:.3f} s"
        )
    if after is None:
        return None
    if start > float(after["start"]) + 1e-6:
        following = f"{after.name}, {float(after['start']):.3f} s"
        return f"start {start:.3f} s would pass the start of the next segment ({following})"
    latest = max(float(row["end"]), float(after["start"]))
    if end > latest + 1e-6:
        return (
            f"end {end:.3f} s would overlap the next segment ({after.name}, starting at "
            f"{float(after['start']):.3f} s); the latest end is {latest:.3f} s"
        )
    return None


def _split_problem(segment_id: str, value: Any, segments: pd.DataFrame) -> str | None:
    shape = "give {'word': k, 'time': seconds}, e.g. from livereview.core.corrections.split_point(row, k)"
    if not isinstance(value, Mapping) or set(value) != {"word", "time"}:
        return f"a split must be {shape}, got {value!r}"
    word, time = value["word"], _seconds(value["time"])
    words = len(str(segments.at[segment_id, "text"]).split())
    if isinstance(word, bool) or not isinstance(word, int) or not 1 <= word < words:
        return f"word {word!r} is not between two words of this segment's {words}; give a word from 1 to {words - 1}"
    start, end = float(segments.at[segment_id, "start"]), float(segments.at[segment_id, "end"])
    if time is None or not start < time < end:
        return f"split time {value['time']!r} is not inside the segment ({start:.3f}-{end:.3f} s); {shape}"
    return None


def _merge_problem(segment_id: str, value: Any, ctx: EditContext) -> str | None:
    segments = ctx.segments
    before, _ = _neighbours(segment_id, segments)
    if before is None or value != before.name:
        right = f"the segment right before it, {before.name!r}" if before is not None else "none: it comes first"
        return f"a segment merges into the segment right before it ({right}), not {value!r}"
    if int(before["chunk_id"]) not in ctx.completed_chunks:
        return f"segment {value!r} is in chunk {int(before['chunk_id'])}, not completed yet"
    speakers = [plain_value(segments.at[s, "speaker_id"]) for s in (value, segment_id)]
    if speakers[0] is None or speakers[0] != speakers[1]:
        return f"the segments are spoken by {speakers[0]!r} and {speakers[1]!r}: only segments of one speaker merge"
    return None


def _text_problem(text: str) -> str | None:
    if not text.strip():
        return "text is empty; give the words spoken"
    if len(text) > MAX_TEXT_CHARS:
        return f"text is {len(text)} characters, over the limit of {MAX_TEXT_CHARS}; shorten it"
    return None


def _speaker_problem(speaker: str, known: set[str], allow_new_speaker: bool) -> str | None:
    if not speaker.strip():
        return "speaker is empty; give a speaker id"
    if speaker in known or allow_new_speaker:
        return None
    return (
        f"unknown speaker {speaker!r}; known speakers are {sorted(known)}: pass allow_new_speaker=True to add a new one"
    )


def confirm_message(changes: Sequence[Change], same: int) -> str:
    per_field = Counter(name for _, name, _ in changes)
    counts = ", ".join(f"{name}: {n}" for name, n in sorted(per_field.items()))
    return (
        f"this batch would set {len(changes)} fields on {len({c[0] for c in changes})} "
        f"segments ({counts}; {same} of them to the value already in effect); nothing was "
        f"written. Check it, then pass confirm=True to apply it"
    )
