"""What changed, in words: the review's notices name the rows, the old and new values, and who.

Rows are compared as the grid shows them (:data:`livereview.ui.grid.FIELDS`), before
and after a change, so one function describes an operator's edit, a batch, an undo, a
split or merge, a rerun and another operator's correction alike.

Usage
-----
>>> before = {"a": {"id": "a", "start": 72.5, "end": 74.0, "speaker": "SPEAKER_00", "text": "Hello there"}}
>>> after = {"a": before["a"] | {"speaker": "Dana"}}
>>> notice_text("ana", describe(before, after))
'ana set the speaker of 1:12.5 SPEAKER_00 “Hello there” from SPEAKER_00 to Dana.'
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

from livereview.core.corrections import base_ids

#: Row column -> how a notice names it.
FIELD_WORDS = {
    "speaker": "speaker",
    "ic_ooc": "IC/OOC label",
    "character": "character",
    "text": "text",
    "flag": "uncertain mark",
    "start": "start",
    "end": "end",
}
#: Row column -> the correction field it shows (the grid's edit messages name these).
CORRECTION_OF = {
    "speaker": "speaker_id",
    "ic_ooc": "ic_ooc",
    "character": "character_tag",
    "text": "text",
    "flag": "confidence_flag",
    "start": "start",
    "end": "end",
}
#: Clauses a notice spells out before it counts the rest.
SHOWN_CLAUSES = 4
_QUOTE = 28

Row = Mapping[str, Any]


def clock(seconds: float | None) -> str:
    """``m:ss.s``, or ``h:mm:ss.s`` from an hour on.

    >>> clock(2051.8), clock(5.25)
    ('34:11.8', '0:05.2')
    """
    minutes, rest = divmod(max(float(seconds or 0.0), 0.0), 60)
    hours, minutes = divmod(int(minutes), 60)
    return f"{hours}:{minutes:02d}:{rest:04.1f}" if hours else f"{minutes}:{rest:04.1f}"


def quote(text: Any, limit: int = _QUOTE) -> str:
    """``text`` in quotes, cut to ``limit`` characters."""
    words = " ".join(str(text or "").split())
    return f"“{words if len(words) <= limit else words[: limit - 1].rstrip() + '…'}”"


def row_name(row: Row) -> str:
    """How a notice points at a row: its start time, speaker and first words."""
    return f"{clock(row['start'])} {row.get('speaker') or 'no speaker'} {quote(row.get('text'))}"


def value_words(column: str, value: Any) -> str:
    """A value as a notice says it."""
    if column == "flag":
        return "uncertain" if value else "not uncertain"
    if value is None or value == "":
        return "none"
    if column in ("start", "end"):
        return clock(value)
    if column == "text":
        return quote(value, 40)
    return str(value)


def describe(before: Mapping[str, Row], after: Mapping[str, Row], *, undo: bool = False) -> list[str]:
    """Clauses saying how rows changed from ``before`` to ``after`` (both: row id -> grid row).

    Rows only in ``before`` were replaced (a split or merge, or its undo) by the rows of
    ``after`` that come from the same segments; rows in both are compared field by field.
    """
    clauses = _structure(before, after, undo=undo)
    groups: dict[tuple[str, Any, Any], list[str]] = defaultdict(list)
    for segment_id in before.keys() & after.keys():
        old, new = before[segment_id], after[segment_id]
        for column in FIELD_WORDS:
            if old.get(column) != new.get(column):
                groups[(column, _hashable(old.get(column)), _hashable(new.get(column)))].append(segment_id)
    merged: dict[tuple[str, Any], list[tuple[Any, list[str]]]] = defaultdict(list)
    for (column, old, new), ids in groups.items():
        merged[(column, new)].append((old, ids))
    for (column, new), olds in sorted(merged.items(), key=lambda item: list(FIELD_WORDS).index(item[0][0])):
        ids = sorted((i for _, group in olds for i in group), key=lambda i: before[i]["start"])
        old_values = {old for old, _ in olds}
        clauses.append(_field_clause(column, [before[i] for i in ids], old_values, new, undo=undo))
    return clauses


def notice_text(actor: str, clauses: Sequence[str], *, undo: bool = False, lead: str | None = None) -> str:
    """One sentence: who did what (``lead`` replaces the opening, e.g. a rerun's name)."""
    if not clauses:
        return f"{lead or actor}: nothing to undo." if undo else f"{lead or actor}: no row changed."
    shown = "; ".join(clauses[:SHOWN_CLAUSES])
    more = len(clauses) - SHOWN_CLAUSES
    if more > 0:
        shown += f"; and {more} more change{'s' if more > 1 else ''}"
    if lead:
        return f"{lead}: {shown}."
    return f"{actor} undid their last change: {shown}." if undo else f"{actor} {shown}."


def batch_question(column: str, value: Any, rows: Sequence[Row], same: int) -> str:
    """The question asked before one value is set on several rows."""
    names = ", ".join(f"{clock(r['start'])} {r.get('speaker') or 'no speaker'}" for r in rows[:5])
    more = f" and {len(rows) - 5} more" if len(rows) > 5 else ""
    already = f" {same} of them already {'has' if same == 1 else 'have'} it." if same else ""
    what = f"the {FIELD_WORDS[column]} to {value_words(column, value)}"
    return f"Set {what} on {len(rows)} rows ({names}{more})?{already}"


def _hashable(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def _field_clause(column: str, rows: list[Row], olds: set[Any], new: Any, *, undo: bool) -> str:
    what = FIELD_WORDS[column]
    if len(rows) == 1:
        target = row_name(rows[0])
    else:
        times = ", ".join(clock(r["start"]) for r in rows[:3]) + (", …" if len(rows) > 3 else "")
        target = f"{len(rows)} rows ({times})"
    was = " / ".join(sorted(value_words(column, old) for old in olds))
    if undo:
        return f"the {what} of {target} is {value_words(column, new)} again (was {was})"
    return f"set the {what} of {target} from {was} to {value_words(column, new)}"


def _structure(before: Mapping[str, Row], after: Mapping[str, Row], *, undo: bool) -> list[str]:
    """Clauses for rows replaced by others (splits and merges, or their undo)."""
    gone = [before[i] for i in before.keys() - after.keys()]
    new = [after[i] for i in after.keys() - before.keys()]
    clauses = []
    for family in _families([*gone, *new]):
        old_rows = [row for row in family if row["id"] in before and row["id"] not in after]
        new_rows = [row for row in family if row["id"] in after and row["id"] not in before]
        if not old_rows:
            continue
        names = " and ".join(row_name(r) for r in old_rows)
        spans = " and ".join(f"{clock(r['start'])}–{clock(r['end'])} {quote(r.get('text'))}" for r in new_rows)
        if undo:
            state = "one row again" if len(new_rows) < len(old_rows) else f"{len(new_rows)} rows again"
            clauses.append(f"{names} {'is' if len(old_rows) == 1 else 'are'} {state}")
        elif len(new_rows) > len(old_rows):
            clauses.append(f"split {names} into {spans}")
        else:
            clauses.append(f"merged {names} into one row, {spans}")
    return clauses


def _families(rows: list[Row]) -> list[list[Row]]:
    """Rows grouped by the model segments they share (directly or through others), each in time order."""
    groups: list[tuple[set[str], list[Row]]] = []
    for row in sorted(rows, key=lambda r: r["start"]):
        bases = set(base_ids(row["id"]))
        joined = [group for group in groups if group[0] & bases]
        members = [row]
        for found, others in joined:
            bases |= found
            members = [*others, *members]
            groups.remove((found, others))
        groups.append((bases, sorted(members, key=lambda r: r["start"])))
    return [members for _, members in groups]
