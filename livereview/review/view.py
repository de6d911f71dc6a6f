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

from collections.abc import Iterable, Mapping
from typing import Any

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
