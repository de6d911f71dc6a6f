"""Which segments a rerun touches: ids, a range of ids, chunks, a time span, or a mask.

Usage
-----
>>> session.reclassify(["c00002-s000", "c00002-s001"], user="ana")            # doctest: +SKIP
>>> session.reclassify(segments=("c00002-s000", "c00004-s003"), user="ana")  # doctest: +SKIP
>>> session.rediarize(time=(60.0, 120.0), num_speakers=3, user="ana")        # doctest: +SKIP
>>> view = session.view()                                                    # doctest: +SKIP
>>> session.reclassify(view["ic_ooc"] == "OOC", user="ana")                  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import pandas as pd

#: How a selection may be given, for error messages.
SELECTION_FORMS = (
    "a list of segment ids, a boolean Series indexed by segment id (a DataFrame filter), "
    "segments=(first_id, last_id), chunks=[chunk ids] or time=(start, end)"
)


class SelectionError(ValueError):
    """A selection that names nothing, unknown segments, or is given in two ways at once."""


def select_segments(
    frame: pd.DataFrame,
    selection: Any = None,
    *,
    segments: tuple[str, str] | str | None = None,
    chunks: Iterable[int] | None = None,
    time: tuple[float, float] | str | None = None,
) -> list[str]:
    """Segment ids chosen by exactly one form of selection, in start-time order.

    Parameters
    ----------
    frame : DataFrame
        The session's segments (index: segment id; columns ``start``, ``end``, ``chunk_id``).
    selection : list of str or boolean Series, optional
        Segment ids, or a mask such as ``view["ic_ooc"] == "OOC"`` (aligned on segment id).
    segments : (str, str) or "A:B"
        First and last segment id of a range (both included).
    chunks : iterable of int
        Every segment of these chunks.
    time : (float, float) or "START:END"
        Segments whose midpoint lies in ``[start, end)`` seconds.

    Raises
    ------
    SelectionError
        Nothing or two forms given, unknown ids, a bad range, or an empty result.
    """
    given = [
        name
        for name, value in (("selection", selection), ("segments", segments), ("chunks", chunks), ("time", time))
        if value is not None
    ]
    if len(given) != 1:
        msg = f"give exactly one selection ({SELECTION_FORMS}); got {', '.join(given) or 'none'}"
        raise SelectionError(msg)
    ordered = frame.sort_values(["start", "segment_id"], kind="stable") if len(frame) else frame
    if selection is not None:
        ids = _from_selection(ordered, selection)
    elif segments is not None:
        ids = _from_range(ordered, parse_pair(segments, "segments", str))
    elif chunks is not None:
        wanted = {int(c) for c in chunks}
        unknown = wanted - set(ordered["chunk_id"])
        if unknown:
            msg = f"no completed chunks {sorted(unknown)[:5]} in this session (it has {ordered['chunk_id'].nunique()})"
            raise SelectionError(msg)
        ids = ordered.index[ordered["chunk_id"].isin(wanted)].tolist()
    else:
        start, end = parse_pair(time, "time", float)
        if end <= start:
            msg = f"time range {start}:{end} is empty: its start must come before its end"
            raise SelectionError(msg)
        middle = (ordered["start"] + ordered["end"]) / 2
        ids = ordered.index[(middle >= start) & (middle < end)].tolist()
    if not ids:
        msg = f"the selection ({given[0]}) matches no segments"
        raise SelectionError(msg)
    return ids


def parse_pair(value: Any, name: str, kind: type) -> tuple[Any, Any]:
    """``("a", "b")`` or ``"a:b"`` as a typed pair; ``name`` is the argument's, for the error."""
    parts = value.split(":") if isinstance(value, str) else list(value)
    try:
        first, last = (kind(part) for part in parts)
    except (TypeError, ValueError):
        msg = f"{name} must be two values, as (first, last) or 'first:last'; got {value!r}"
        raise SelectionError(msg) from None
    return first, last


def _from_selection(ordered: pd.DataFrame, selection: Any) -> list[str]:
    if isinstance(selection, pd.Series) and pd.api.types.is_bool_dtype(selection):
        unknown = selection.index.difference(ordered.index)
        if len(unknown):
            msg = f"the mask is indexed by ids this session does not have ({', '.join(map(str, unknown[:5]))})"
            raise SelectionError(msg)
        chosen = set(selection.index[selection.to_numpy()])
        return [sid for sid in ordered.index if sid in chosen]
    if isinstance(selection, str) or not isinstance(selection, Iterable):
        msg = f"cannot select with {type(selection).__name__}; give {SELECTION_FORMS}"
        raise SelectionError(msg)
    wanted = [str(sid) for sid in selection]
    _check_known(ordered, wanted)
    chosen = set(wanted)
    return [sid for sid in ordered.index if sid in chosen]


def _from_range(ordered: pd.DataFrame, bounds: Sequence[str]) -> list[str]:
    _check_known(ordered, bounds)
    first, last = (ordered.index.get_loc(sid) for sid in bounds)
    if last < first:
        msg = f"segment range {bounds[0]}:{bounds[1]} runs backwards: {bounds[1]} starts before {bounds[0]}"
        raise SelectionError(msg)
    return ordered.index[first : last + 1].tolist()


def _check_known(ordered: pd.DataFrame, ids: Sequence[str]) -> None:
    unknown = [sid for sid in ids if sid not in ordered.index]
    if unknown:
        more = " …" if len(unknown) > 5 else ""
        msg = f"unknown segment ids {', '.join(unknown[:5])}{more} (ids look like c00003-s002)"
        raise SelectionError(msg)
