"""How operator corrections lay over a segment table: field values, boundaries, splits and merges.

The one fold of corrections (``segment_id -> field -> value``, as
:meth:`livereview.store.overrides.OverrideStore.current_values` gives them) into a
segment table. The merged view (:func:`livereview.review.view.merged_view`), which
everything downstream reads, is built with :func:`apply_corrections`; the override
store checks boundary corrections against the segments it gives.

Fields a correction may name (:data:`CORRECTION_FIELDS`):

- the values of :data:`~livereview.core.segments.OVERRIDABLE_FIELDS` (speaker,
  character, IC/OOC, text, the "uncertain" flag), and a segment's ``start`` and
  ``end`` in seconds, replace the segment's own;
- ``split``: ``{"word": k, "time": t}`` cuts a segment before the word ``k`` of its
  text (counted from 0, words separated by white space) at ``t`` seconds, into
  ``<id>.1`` and ``<id>.2``. The parts keep every correction of the segment they come
  from (the text is cut at the word) and take corrections of their own;
- ``merged_into``: set on a segment B, the id of the segment A right before it. A and
  B become one segment, ``<A>+<B>``: A's speaker, the two texts and word lists one
  after the other, the weaker of each confidence, MIXED when their IC/OOC labels
  differ, uncertain when either is.

Ids say where a segment comes from (:func:`base_ids`): ``c00003-s002.2`` is the second
part of ``c00003-s002``, ``c00003-s002+c00003-s003`` the two joined. A correction whose
segment no longer exists (its split or merge was undone) is kept in the log and left
out of the table.

Usage
-----
>>> import pandas as pd
>>> table = pd.DataFrame({"chunk_id": [0, 0], "start": [0.0, 2.0], "end": [1.5, 3.0],
...                       "text": ["roll for it now", "okay"], "speaker_id": ["Dana", "Dana"]},
...                      index=["c00000-s000", "c00000-s001"])
>>> view = apply_corrections(table, {"c00000-s000": {"split": {"word": 2, "time": 0.8}}})
>>> view[["start", "end", "text"]].values.tolist()
[[0.0, 0.8, 'roll for'], [0.8, 1.5, 'it now'], [2.0, 3.0, 'okay']]
>>> list(view.index)
['c00000-s000.1', 'c00000-s000.2', 'c00000-s001']
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
import pandas as pd

from livereview.core.segments import BASE_DEFAULTS, MIXED, OVERRIDABLE_FIELDS

#: Boundary fields whose value is a time in seconds.
TIME_FIELDS = ("start", "end")
#: Fields that change which segments there are.
STRUCTURE_FIELDS = ("split", "merged_into")
#: Every field a correction may name, in the order ``overridden`` lists them.
CORRECTION_FIELDS = (*OVERRIDABLE_FIELDS, *TIME_FIELDS, *STRUCTURE_FIELDS)
#: Fields whose value replaces a column of the segment table.
VALUE_FIELDS = (*OVERRIDABLE_FIELDS, *TIME_FIELDS)
#: Column listing, per row, the fields an override changed (a tuple of field names).
OVERRIDDEN_COLUMN = "overridden"
#: Joins the ids of merged segments.
MERGE_MARK = "+"
#: Separates a split part's number from the id it was cut from.
PART_MARK = "."
_CONFIDENCES = ("asr_confidence", "speaker_confidence", "ic_ooc_confidence")


def _overridden_tuples() -> np.ndarray:
    """Tuple of field names for every bit pattern over :data:`CORRECTION_FIELDS`."""
    table = np.empty(1 << len(CORRECTION_FIELDS), dtype=object)
    for code in range(len(table)):
        table[code] = tuple(f for bit, f in enumerate(CORRECTION_FIELDS) if code >> bit & 1)
    return table


_OVERRIDDEN = _overridden_tuples()


def base_ids(segment_id: str) -> list[str]:
    """The ids of the model's segments a segment comes from, in time order.

    >>> base_ids("c00001-s004.2+c00001-s005")
    ['c00001-s004', 'c00001-s005']
    """
    if MERGE_MARK not in segment_id and PART_MARK not in segment_id:
        return [segment_id]  # a segment of the model, as most are
    return [part.split(PART_MARK)[0] for part in segment_id.split(MERGE_MARK)]


def part_ids(segment_id: str) -> tuple[str, str]:
    """The ids of the two parts a split of ``segment_id`` gives."""
    return f"{segment_id}{PART_MARK}1", f"{segment_id}{PART_MARK}2"


def merged_id(first: str, second: str) -> str:
    """The id of ``first`` and ``second`` merged (``second`` right after ``first``)."""
    return f"{first}{MERGE_MARK}{second}"


def split_point(row: Mapping[str, Any], word: int) -> dict[str, Any]:
    """The ``split`` value that cuts a segment before its word ``word`` (0-based, in its text).

    The time is the start of that word when the segment's ``words`` match its text word
    for word, else a share of the segment's span in proportion to the characters before it.

    Parameters
    ----------
    row : mapping
        The segment as the merged view shows it: ``start``, ``end``, ``text`` and,
        when known, ``words`` (word timings).
    word : int
        Index of the first word of the second part, from 1 to the number of words - 1.

    Raises
    ------
    ValueError
        The segment has fewer than two words, or ``word`` is not between them.
    """
    tokens = str(row["text"] or "").split()
    if not 1 <= word < len(tokens):
        msg = (
            f"cannot split a segment of {len(tokens)} words before word {word}: "
            f"give a word from 1 to {len(tokens) - 1} (counted from 0)"
            if len(tokens) > 1
            else f"cannot split a segment of {len(tokens)} word: it needs two words or more"
        )
        raise ValueError(msg)
    start, end = float(row["start"]), float(row["end"])
    words = word_list(row.get("words"))
    if len(words) == len(tokens):
        time = float(words[word]["start"])
    else:
        before = len(" ".join(tokens[:word])) + 1
        time = start + (end - start) * before / (len(" ".join(tokens)) + 1)
    inside = min(max(time, start + 0.001), end - 0.001) if end - start > 0.002 else (start + end) / 2
    return {"word": word, "time": round(inside, 3)}


def apply_corrections(segments: pd.DataFrame, overrides: Mapping[str, Mapping[str, Any]]) -> pd.DataFrame:
    """The segment table with the corrections in effect applied.

    Parameters
    ----------
    segments : pandas.DataFrame
        The base segment table, index = ``segment_id`` (unique); at least ``chunk_id``,
        ``start``, ``end`` and ``text`` when boundaries are corrected.
    overrides : mapping
        ``segment_id -> field -> value``; fields among :data:`CORRECTION_FIELDS`.
        Segments not in the table are ignored (a rerun may have replaced them, an
        undo removed them).

    Returns
    -------
    pandas.DataFrame
        A copy of ``segments`` with corrected cells replaced, a ``confidence_flag``
        column (False unless set) and an ``overridden`` column (tuple of the corrected
        field names, empty for untouched rows). Split and merged segments replace the
        segments they come from, and the rows are in time order; without boundary
        corrections the index is the table's, in its order.

    Raises
    ------
    ValueError
        A correction names a field not in :data:`CORRECTION_FIELDS`.
    """
    view = segments.copy()
    for name in OVERRIDABLE_FIELDS:
        if name not in view.columns:
            view[name] = BASE_DEFAULTS.get(name)
    ids, names, values = _flatten(overrides)
    positions = view.index.get_indexer(ids)  # -1 for segments not in the table
    codes = np.zeros(len(view), dtype=np.int64)
    for bit, name in enumerate(VALUE_FIELDS):
        chosen = (positions >= 0) & (names == name)
        if chosen.any():
            _assign(view, name, positions[chosen], values[chosen])
            codes[positions[chosen]] |= 1 << bit
    view[OVERRIDDEN_COLUMN] = _OVERRIDDEN[codes]
    moved = set(names.tolist()) & {*TIME_FIELDS, *STRUCTURE_FIELDS}
    if moved & set(STRUCTURE_FIELDS):
        view = _reshape(view, overrides)
    if moved:
        view = view.iloc[np.argsort(view["start"].to_numpy(dtype=float), kind="stable")]
    return view


def _flatten(overrides: Mapping[str, Mapping[str, Any]]) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Parallel arrays of segment ids, field names and values."""
    ids: list[str] = []
    names: list[str] = []
    values: list[Any] = []
    for segment_id, fields in overrides.items():
        for name, value in fields.items():
            ids.append(segment_id)
            names.append(name)
            values.append(value)
    unknown = sorted(set(names) - set(CORRECTION_FIELDS))
    if unknown:
        msg = f"overrides name fields {unknown} that cannot be overridden; use {CORRECTION_FIELDS}"
        raise ValueError(msg)
    value_array = np.empty(len(values), dtype=object)
    value_array[:] = values
    return ids, np.asarray(names, dtype=object), value_array


def _assign(view: pd.DataFrame, name: str, positions: np.ndarray, values: np.ndarray) -> None:
    """Write ``values`` at row ``positions`` of column ``name``, keeping its dtype if it can."""
    if name in TIME_FIELDS:
        values = values.astype(float)
    elif view[name].dtype.kind not in "Ob":  # numeric column (e.g. all missing): hold anything
        view[name] = view[name].astype(object)
    view.iloc[positions, view.columns.get_loc(name)] = values


def _reshape(view: pd.DataFrame, overrides: Mapping[str, Mapping[str, Any]]) -> pd.DataFrame:
    """Replace split and merged segments by their parts and unions, until no correction applies.

    Splits go before merges, each in id order, so the result does not depend on the
    order corrections were made in; a correction whose segments are gone is skipped.
    """
    splits = {sid: f["split"] for sid, f in overrides.items() if f.get("split") is not None}
    merges = {sid: f["merged_into"] for sid, f in overrides.items() if f.get("merged_into") is not None}
    present = set(view.index)
    rows: dict[str, dict[str, Any]] = {}
    replaced: dict[str, list[str]] = {}

    def row(segment_id: str) -> dict[str, Any]:
        if segment_id not in rows:
            rows[segment_id] = view.loc[segment_id].to_dict()
        return rows[segment_id]

    def replace(old: list[str], new: dict[str, dict[str, Any]]) -> None:
        for segment_id, values in new.items():
            rows[segment_id] = _corrected(values, segment_id, overrides.get(segment_id, {}))
        replaced[old[0]] = list(new)
        for segment_id in old[1:]:
            replaced[segment_id] = []
        present.difference_update(old)
        present.update(new)

    applied = True
    while applied:
        applied = False
        for segment_id in sorted(splits.keys() & present):
            parts = _split(row(segment_id), splits[segment_id])
            if parts is not None:
                replace([segment_id], dict(zip(part_ids(segment_id), parts, strict=True)))
                applied = True
        for second in sorted(merges.keys() & present):
            first = merges[second]
            if first in present and second in present:
                replace([first, second], {merged_id(first, second): _merged(row(first), row(second))})
                applied = True
    if not replaced:
        return view
    order = [new for segment_id in view.index for new in _expand(segment_id, replaced)]
    created = [segment_id for segment_id in order if segment_id not in view.index]
    new_rows = pd.DataFrame.from_records([rows[s] for s in created], index=created, columns=view.columns)
    for name, dtype in view.dtypes.items():
        if new_rows[name].dtype != dtype:
            try:
                new_rows[name] = new_rows[name].astype(dtype)
            except (TypeError, ValueError):
                new_rows[name] = new_rows[name].astype(object)
    gone = [segment_id for segment_id in replaced if segment_id in view.index]
    return pd.concat([view.drop(index=gone), new_rows]).loc[order]


def _expand(segment_id: str, replaced: Mapping[str, list[str]]) -> Iterator[str]:
    if segment_id not in replaced:
        yield segment_id
        return
    for new in replaced[segment_id]:
        yield from _expand(new, replaced)


def _corrected(values: dict[str, Any], segment_id: str, own: Mapping[str, Any]) -> dict[str, Any]:
    """A new segment's row with its id and the corrections made on it."""
    values = dict(values)
    if "segment_id" in values:
        values["segment_id"] = segment_id
    fields = set(values[OVERRIDDEN_COLUMN])
    for name, value in own.items():
        if name in VALUE_FIELDS:
            values[name] = float(value) if name in TIME_FIELDS else value
            fields.add(name)
    values[OVERRIDDEN_COLUMN] = tuple(f for f in CORRECTION_FIELDS if f in fields)
    return values


def _split(row: dict[str, Any], point: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """The two parts of ``row`` cut at ``point`` (``{"word", "time"}``); None if it has one word."""
    tokens = str(row["text"] if _filled(row["text"]) else "").split()
    if len(tokens) < 2:
        return None
    word = min(max(int(point["word"]), 1), len(tokens) - 1)
    start, end = float(row["start"]), float(row["end"])
    time = min(max(float(point["time"]), start), max(end, start))
    first, second = dict(row), dict(row)
    first.update(end=time, text=" ".join(tokens[:word]))
    second.update(start=time, text=" ".join(tokens[word:]))
    if "words" in row:
        words = word_list(row["words"])
        cut = next((i for i, w in enumerate(words) if float(w["start"]) >= time), len(words))
        for part, chosen in ((first, words[:cut]), (second, words[cut:])):
            part["words"] = chosen
            if chosen and "asr_confidence" in part:
                part["asr_confidence"] = float(np.mean([w["probability"] for w in chosen]))
    for part in (first, second):
        part[OVERRIDDEN_COLUMN] = (*row[OVERRIDDEN_COLUMN], "split")
    return first, second


def _merged(first: dict[str, Any], second: dict[str, Any]) -> dict[str, Any]:
    """One segment of ``first`` and ``second`` (which follows it)."""
    row = dict(first)
    row["start"] = min(float(first["start"]), float(second["start"]))
    row["end"] = max(float(first["end"]), float(second["end"]))
    row["text"] = " ".join(str(r["text"]) for r in (first, second) if _filled(r["text"]))
    if "words" in row:
        row["words"] = [*word_list(first["words"]), *word_list(second["words"])]
    for name in _CONFIDENCES:
        if name in row:
            known = [float(r[name]) for r in (first, second) if _filled(r[name])]
            row[name] = min(known) if known else None
    labels = {r["ic_ooc"] for r in (first, second) if _filled(r["ic_ooc"])}
    row["ic_ooc"] = labels.pop() if len(labels) == 1 else (MIXED if labels else first["ic_ooc"])
    if not _filled(first["character_tag"]):
        row["character_tag"] = second["character_tag"]
    row["confidence_flag"] = bool(first["confidence_flag"]) or bool(second["confidence_flag"])
    row[OVERRIDDEN_COLUMN] = (*first[OVERRIDDEN_COLUMN], *second[OVERRIDDEN_COLUMN], "merged_into")
    return row


def word_list(words: Any) -> list[dict[str, Any]]:
    """Word timings as dicts (``start``, ``end``, ``word``, ``probability``); [] when unknown."""
    if not isinstance(words, list | tuple | np.ndarray):
        return []
    return [w if isinstance(w, Mapping) else w.to_dict() for w in words]


def _filled(value: Any) -> bool:
    """Whether a cell holds a value (not None, NaN or NA) that is not blank."""
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return False
    return bool(str(value).strip())
