"""The merged view: base results with the current overrides on top."""

from __future__ import annotations

import tempfile
from typing import Any

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from livereview.core.segments import IC_OOC_LABELS, OVERRIDABLE_FIELDS, SEGMENT_COLUMNS, Segment, segments_to_frame
from livereview.review.view import merged_view
from livereview.store.overrides import EditContext, OverrideStore

SPEAKERS = ("Dana", "Alex", "Sam", "Riley")
CHARACTERS = ("", "DM", "Mira", "Borin", "Kestrel")
WORDS = st.text(alphabet="abcdefgh ,.!?", min_size=1, max_size=30).filter(str.strip)

#: A valid override value for each field.
FIELD_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "speaker_id": st.sampled_from(SPEAKERS),
    "character_tag": st.sampled_from(CHARACTERS),
    "ic_ooc": st.sampled_from(IC_OOC_LABELS),
    "text": WORDS,
    "confidence_flag": st.booleans(),
}


@st.composite
def segment_tables(draw: st.DrawFn) -> pd.DataFrame:
    """Segment tables of 1-25 segments, some fields missing as a live session has them."""
    count = draw(st.integers(1, 25))
    segments = [
        Segment(
            "s",
            f"c{i // 5:05d}-s{i % 5:03d}",
            i // 5,
            float(i),
            i + 0.5,
            draw(WORDS),
            speaker_id=draw(st.none() | st.sampled_from(SPEAKERS)),
            ic_ooc=draw(st.none() | st.sampled_from(IC_OOC_LABELS)),
            character_tag=draw(st.none() | st.sampled_from(CHARACTERS)),
        )
        for i in range(count)
    ]
    return segments_to_frame(segments)


@st.composite
def tables_and_overrides(draw: st.DrawFn) -> tuple[pd.DataFrame, dict[str, dict[str, Any]]]:
    segments = draw(segment_tables())
    overrides: dict[str, dict[str, Any]] = {}
    for segment_id in draw(st.lists(st.sampled_from(segments.index.tolist()), unique=True)):
        fields = draw(st.lists(st.sampled_from(OVERRIDABLE_FIELDS), min_size=1, unique=True))
        overrides[segment_id] = {name: draw(FIELD_VALUES[name]) for name in fields}
    return segments, overrides


@st.composite
def edit_scripts(draw: st.DrawFn) -> tuple[pd.DataFrame, list[tuple]]:
    """A segment table and a list of ("set", user, segment, field, value) / ("undo", user)."""
    segments = draw(segment_tables())
    ids = st.sampled_from(segments.index.tolist())
    users = st.sampled_from(("ana", "bob"))
    field = st.sampled_from(OVERRIDABLE_FIELDS)
    sets = st.tuples(st.just("set"), users, ids, field).flatmap(
        lambda op: FIELD_VALUES[op[3]].map(lambda value: (*op, value))
    )
    undos = st.tuples(st.just("undo"), users)
    return segments, draw(st.lists(sets | undos, max_size=12))


def assert_untouched_rows_equal(view: pd.DataFrame, segments: pd.DataFrame) -> None:
    untouched = view["overridden"].map(len) == 0
    pd.testing.assert_frame_equal(view.loc[untouched, segments.columns], segments[untouched])
    assert not view.loc[untouched, "confidence_flag"].any()


@settings(max_examples=100, deadline=None)
@given(tables_and_overrides())
def test_view_applies_overrides_and_keeps_the_rest(
    case: tuple[pd.DataFrame, dict[str, dict[str, Any]]],
) -> None:
    segments, overrides = case
    view = merged_view(segments, overrides)
    assert view.index.equals(segments.index)
    assert_untouched_rows_equal(view, segments)
    for segment_id, row in view.iterrows():
        fields = overrides.get(segment_id, {})
        assert set(row["overridden"]) == set(fields)
        for name, value in fields.items():
            assert row[name] == value
        assert row["confidence_flag"] is fields.get("confidence_flag", False)


@settings(max_examples=40, deadline=None)
@given(edit_scripts())
def test_view_of_a_store_shows_the_last_value_by_seq(
    case: tuple[pd.DataFrame, list[tuple]],
) -> None:
    segments, script = case
    context = EditContext(segments, set(segments["chunk_id"]), set(SPEAKERS))
    expected: dict[tuple[str, str], Any] = {}  # (segment, field) -> value in effect
    batches: dict[str, list[dict[tuple[str, str], Any]]] = {"ana": [], "bob": []}
    absent = object()
    with tempfile.TemporaryDirectory() as session_dir:
        store = OverrideStore(session_dir, "s", lambda: context)
        for op, user, *change in script:
            if op == "set":
                segment_id, name, value = change
                store.set(segment_id, user=user, **{name: value})
                batches[user].append({(segment_id, name): expected.get((segment_id, name), absent)})
                expected[(segment_id, name)] = value
            else:
                undone = store.undo_last_batch(user)
                assert (undone is None) == (not batches[user])
                for key, before in (batches[user].pop() if batches[user] else {}).items():
                    if before is absent:
                        expected.pop(key, None)
                    else:
                        expected[key] = before
        view = merged_view(segments, store.current_values())

    assert_untouched_rows_equal(view, segments)
    overridden = {(segment_id, name) for segment_id, names in view["overridden"].items() for name in names}
    assert overridden == set(expected)
    for (segment_id, name), value in expected.items():
        assert view.at[segment_id, name] == value


def test_show_base_puts_the_models_value_beside_each_field() -> None:
    segments = segments_to_frame(
        [
            Segment("s", "a", 0, 0.0, 1.0, "hello", speaker_id="Dana", ic_ooc="IC"),
            Segment("s", "b", 0, 1.0, 2.0, "roll it", speaker_id="Sam", ic_ooc="OOC"),
        ]
    )
    view = merged_view(segments, {"a": {"speaker_id": "Alex", "confidence_flag": True}}, show_base=True)
    columns = list(view.columns)
    for name in OVERRIDABLE_FIELDS:
        assert columns.index(f"{name}_base") == columns.index(name) + 1
    assert view.loc["a", ["speaker_id", "speaker_id_base"]].tolist() == ["Alex", "Dana"]
    assert view.loc["a", ["confidence_flag", "confidence_flag_base"]].tolist() == [True, False]
    assert view.loc["b", ["speaker_id", "speaker_id_base"]].tolist() == ["Sam", "Sam"]
    assert view.at["a", "overridden"] == ("speaker_id", "confidence_flag")
    assert view.at["b", "overridden"] == ()
    assert list(merged_view(segments, {}).columns) == [
        *SEGMENT_COLUMNS,
        "confidence_flag",
        "overridden",
    ]


def test_view_ignores_segments_it_does_not_have() -> None:
    segments = segments_to_frame([Segment("s", "a", 0, 0.0, 1.0, "hello")])
    view = merged_view(segments, {"gone": {"text": "replaced by a rerun"}})
    assert view.at["a", "overridden"] == ()


def test_view_refuses_fields_that_cannot_be_overridden() -> None:
    segments = segments_to_frame([Segment("s", "a", 0, 0.0, 1.0, "hello")])
    with pytest.raises(ValueError, match=r"fields \['asr_confidence'\] that cannot be overridden"):
        merged_view(segments, {"a": {"asr_confidence": 1.0}})
