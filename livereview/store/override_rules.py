"""The rules a correction must follow, checked before anything is written.

A correction names a known segment of a completed chunk and an overridable field
(:data:`~livereview.core.segments.OVERRIDABLE_FIELDS`), with a value of the right kind:
an IC/OOC label, a non-empty text within :data:`MAX_TEXT_CHARS`, a known speaker
(or a new one when allowed), True/False for the "uncertain" flag. A batch is
checked whole and refused whole, with every problem listed.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from livereview.core.segments import BASE_DEFAULTS, IC_OOC_LABELS, OVERRIDABLE_FIELDS

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
        :data:`livereview.core.segments.SEGMENT_COLUMNS`).
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
    for segment_id, name, raw in changes:
        value = plain_value(raw)
        problem = _problem(segment_id, name, value, ctx, allow_new_speaker)
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


def _problem(segment_id: str, name: str, value: Any, ctx: EditContext, allow_new_speaker: bool) -> str | None:
    """Why one override is refused, or None."""
    if name not in OVERRIDABLE_FIELDS:
        return f"not an overridable field; use one of {OVERRIDABLE_FIELDS}"
    if segment_id not in ctx.segments.index:
        return f"unknown segment; the session has {len(ctx.segments)} segments, check the id"
    chunk = int(ctx.segments.at[segment_id, "chunk_id"])
    if chunk not in ctx.completed_chunks:
        return f"chunk {chunk} is not completed yet; correct it once its results are final"
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
