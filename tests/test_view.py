"""The merged view: base results with the current overrides on top."""

from __future__ import annotations

import tempfile
from typing import Any

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from livereview.core.segments import IC_OOC_LABELS, OVERRIDABLE_FIELDS, SEGMENT_COLUMNS, Segment, segments_to_frame
from livereview.review.view import corrected_turns, merged_view
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


def _turn_table(*turns: tuple[float, float, str]) -> pd.DataFrame:
    return pd.DataFrame(list(turns), columns=["start", "end", "speaker_id"])


def _span_segments(*spans: tuple[float, float, str | None]) -> pd.DataFrame:
    return segments_to_frame(
        [
            Segment("s", f"c00000-s{i:03d}", 0, a, b, "one two three four", speaker_id=who)
            for i, (a, b, who) in enumerate(spans)
        ]
    )


def _as_tuples(turns: pd.DataFrame) -> list[tuple[float, float, str]]:
    return [(round(a, 3), round(b, 3), who) for a, b, who in turns.itertuples(index=False)]


def test_corrected_turns_keep_uncorrected_turns_and_speech_no_segment_covers() -> None:
    segments = _span_segments((0.0, 2.0, "Dana"), (5.0, 6.0, "Alex"), (9.0, 9.5, "Sam"))
    turns = _turn_table((0.0, 2.5, "Dana"), (1.5, 3.0, "Alex"), (5.0, 6.2, "Alex"), (7.0, 8.0, "Riley"))
    result = _as_tuples(corrected_turns(turns, segments, {}))
    # every turn kept (overlap and the 7-8 s speech no segment covers), and the segment no turn touches added
    assert result == [
        (0.0, 2.5, "Dana"),
        (1.5, 3.0, "Alex"),
        (5.0, 6.2, "Alex"),
        (7.0, 8.0, "Riley"),
        (9.0, 9.5, "Sam"),
    ]


def test_a_speaker_correction_relabels_the_model_speakers_turns_inside_its_segment_only() -> None:
    segments = _span_segments((0.0, 2.0, "Dana"), (2.0, 4.0, "Dana"), (4.0, 6.0, "Alex"))
    turns = _turn_table((0.0, 6.0, "Dana"), (1.0, 3.0, "Alex"), (4.0, 6.0, "Alex"))
    result = _as_tuples(corrected_turns(turns, segments, {"c00000-s001": {"speaker_id": "Sam"}}))
    assert result == [
        (0.0, 2.0, "Dana"),
        (1.0, 3.0, "Alex"),  # another speaker's overlapping turn stays
        (2.0, 4.0, "Sam"),  # the corrected segment's span of Dana's turn
        (4.0, 6.0, "Alex"),
        (4.0, 6.0, "Dana"),  # Dana's turn after the corrected segment keeps its speaker
    ]


def test_a_corrected_segment_no_turn_of_its_speaker_touches_becomes_a_turn() -> None:
    segments = _span_segments((0.0, 1.0, None), (3.0, 4.0, "Dana"))
    turns = _turn_table((3.0, 4.0, "Dana"))
    result = _as_tuples(corrected_turns(turns, segments, {"c00000-s000": {"speaker_id": "Riley"}}))
    assert result == [(0.0, 1.0, "Riley"), (3.0, 4.0, "Dana")]


def test_a_split_part_with_its_own_speaker_relabels_only_its_part() -> None:
    segments = _span_segments((0.0, 4.0, "Dana"))
    turns = _turn_table((0.0, 4.0, "Dana"))
    overrides = {"c00000-s000": {"split": {"word": 2, "time": 2.5}}, "c00000-s000.2": {"speaker_id": "Alex"}}
    assert _as_tuples(corrected_turns(turns, segments, overrides)) == [(0.0, 2.5, "Dana"), (2.5, 4.0, "Alex")]


@settings(max_examples=60, deadline=None)
@given(tables_and_overrides(), st.lists(st.tuples(st.floats(0, 30), st.floats(0.1, 4), st.sampled_from(SPEAKERS))))
def test_corrected_turns_give_every_corrected_or_untouched_segment_its_speaker(
    case: tuple[pd.DataFrame, dict[str, dict[str, Any]]], raw_turns: list[tuple[float, float, str]]
) -> None:
    segments, overrides = case
    turns = _turn_table(*[(a, a + d, who) for a, d, who in raw_turns])
    result = corrected_turns(turns, segments, overrides)
    assert (result["end"] > result["start"]).all() and result["start"].is_monotonic_increasing
    for row in merged_view(segments, overrides, show_base=True).itertuples():
        if pd.isna(row.speaker_id) or row.end <= row.start:
            continue
        touched = ((turns["start"] < row.end) & (turns["end"] > row.start)).any()
        if row.speaker_id != row.speaker_id_base or not touched:  # the operator changed the speaker, or no turn
            inside = result[(result["start"] < row.end) & (result["end"] > row.start)]
            assert row.speaker_id in set(inside["speaker_id"]), (row.Index, row.speaker_id)
