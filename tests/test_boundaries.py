"""Boundary corrections: start and end, splits at a word, merges, through the real override store.

The segments are those of a real run on pyannote's sample recording (the legacy fixture's
``segments.jsonl``, with Whisper's word timings). Property tests drive any sequence of
set, split, merge, boundary and undo operations through :class:`OverrideStore` and check
the merged view after each one.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from livereview.core.corrections import base_ids, part_ids, split_point
from livereview.core.segments import IC_OOC_LABELS, Segment, segments_to_frame
from livereview.review.exports import export
from livereview.review.view import merged_view
from livereview.store.overrides import EditContext, OverrideError, OverrideStore

SEGMENTS = Path(__file__).parent / "data" / "legacy-session" / "session" / "segments.jsonl"
SPEAKERS = ("SPEAKER_00", "SPEAKER_01", "Alex", "Dana")
USERS = ("ana", "bob")


def base_table() -> pd.DataFrame:
    lines = SEGMENTS.read_text(encoding="utf-8").splitlines()
    return segments_to_frame([Segment.from_dict(json.loads(line)) for line in lines])


BASE = base_table()
SPANS = BASE[["segment_id", "chunk_id", "start", "end", "speaker_id", "character_tag", "ic_ooc", "text"]]


def new_store(directory: str) -> OverrideStore:
    context = EditContext(SPANS, set(BASE["chunk_id"]), set(SPEAKERS))
    return OverrideStore(directory, "legacy-sample", lambda: context)


def words_of(view: pd.DataFrame) -> list[tuple[float, str]]:
    return [(w["start"], w["word"]) for words in view["words"] for w in words]


def assert_well_formed(view: pd.DataFrame) -> None:
    """Ordered, non-negative, covering the same words and the same model segments."""
    starts, ends = view["start"].to_numpy(dtype=float), view["end"].to_numpy(dtype=float)
    assert (starts >= 0).all() and (ends >= starts).all(), view[["start", "end"]]
    assert (starts[1:] >= starts[:-1]).all(), "segments out of time order"
    assert view.index.is_unique and (view.index == view["segment_id"]).all()
    assert words_of(view) == words_of(BASE), "the words are not those of the model, in order"
    covered = {b for segment_id in view.index for b in base_ids(segment_id)}
    assert covered == set(BASE.index)


def view_of(store: OverrideStore) -> pd.DataFrame:
    return merged_view(BASE, store.current_values())


def apply(store: OverrideStore, operation: tuple[Any, ...]) -> bool:
    """Resolve one operation against the view as it stands and write it; False when refused."""
    kind, user, *rest = operation
    if kind == "undo":
        store.undo_last_batch(user)
        return True
    view = view_of(store)
    position = rest[0] % len(view)
    row, segment_id = view.iloc[position], view.index[position]
    if kind == "set":
        fields = {rest[1]: rest[2]}
    elif kind == "split":
        words = len(str(row["text"]).split())
        if words < 2:
            return False
        fields = {"split": split_point(row, 1 + rest[1] % (words - 1))}
    elif kind == "merge":
        fields = {"merged_into": view.index[position - 1]}  # the first segment names the last: refused
    else:
        fields = {kind: round(float(row[kind]) + rest[1], 3)}
    size = store.log_path.stat().st_size if store.log_path.exists() else 0
    try:
        store.set(segment_id, user=user, allow_new_speaker=True, **fields)
    except OverrideError:
        assert (store.log_path.stat().st_size if store.log_path.exists() else 0) == size, "a refusal wrote"
        return False
    return True


VALUES = {
    "speaker_id": st.sampled_from(SPEAKERS),
    "ic_ooc": st.sampled_from(IC_OOC_LABELS),
    "character_tag": st.sampled_from(("", "Mira", "DM")),
    "text": st.sampled_from(("roll for initiative", "okay", "the door opens slowly now")),
    "confidence_flag": st.booleans(),
}
POSITIONS = st.integers(0, 40)


def operations(users: tuple[str, ...]) -> st.SearchStrategy[tuple[Any, ...]]:
    who = st.sampled_from(users)
    sets = st.tuples(st.just("set"), who, POSITIONS, st.sampled_from(sorted(VALUES))).flatmap(
        lambda op: VALUES[op[3]].map(lambda value: (*op, value))
    )
    splits = st.tuples(st.just("split"), who, POSITIONS, st.integers(0, 20))
    merges = st.tuples(st.just("merge"), who, POSITIONS)
    moves = st.tuples(st.sampled_from(("start", "end")), who, POSITIONS, st.floats(-1.5, 1.5))
    undos = st.tuples(st.just("undo"), who)
    return sets | splits | merges | moves | undos


@settings(max_examples=60, deadline=None)
@given(st.lists(operations(USERS), max_size=14))
def test_any_sequence_of_corrections_keeps_the_view_well_formed(script: list[tuple[Any, ...]]) -> None:
    with tempfile.TemporaryDirectory() as directory:
        store = new_store(directory)
        for operation in script:
            apply(store, operation)
            assert_well_formed(view_of(store))
        reopened = new_store(directory)  # the log alone gives the same view
        pd.testing.assert_frame_equal(view_of(reopened), view_of(store))


@settings(max_examples=40, deadline=None)
@given(st.lists(operations(("ana",)), min_size=1, max_size=10))
def test_undoing_every_correction_gives_back_the_model_segments(script: list[tuple[Any, ...]]) -> None:
    with tempfile.TemporaryDirectory() as directory:
        store = new_store(directory)
        for operation in script:
            apply(store, operation)
        while store.undo_last_batch("ana") is not None:
            assert_well_formed(view_of(store))
        view = view_of(store)
    assert not view["overridden"].map(len).any()
    pd.testing.assert_frame_equal(view.drop(columns=["overridden", "confidence_flag"]), BASE)


@pytest.fixture
def store(tmp_path: Path) -> OverrideStore:
    return new_store(str(tmp_path))


def test_split_parts_take_new_ids_and_keep_the_corrections_of_the_segment(store: OverrideStore) -> None:
    segment_id = "c00000-s009"  # "And I'm Sheila and Texas, originally from Chicago."
    store.set(segment_id, user="ana", speaker_id="Dana", character_tag="Mira")
    row = view_of(store).loc[segment_id]
    point = split_point(row, 5)
    assert point == {"word": 5, "time": row["words"][5]["start"]}
    (record,) = store.set(segment_id, user="ana", split=point)
    assert (record.field, record.value, record.previous_value) == ("split", point, None)
    view = view_of(store)
    first, second = part_ids(segment_id)
    assert segment_id not in view.index
    assert view.loc[first, "text"] == "And I'm Sheila and Texas,"
    assert view.loc[second, "text"] == "originally from Chicago."
    assert (view.loc[first, "end"], view.loc[second, "start"]) == (point["time"], point["time"])
    assert view.loc[[first, second], "speaker_id"].tolist() == ["Dana", "Dana"]
    assert view.loc[[first, second], "character_tag"].tolist() == ["Mira", "Mira"]
    assert set(view.loc[second, "overridden"]) == {"speaker_id", "character_tag", "split"}
    # A part takes corrections of its own; the segment it came from takes none any more.
    (own,) = store.set(second, user="ana", ic_ooc="OOC")
    assert own.previous_value == BASE.loc[segment_id, "ic_ooc"]
    assert view_of(store).loc[second, "ic_ooc"] == "OOC"
    with pytest.raises(OverrideError, match=r"was split or merged and is now \['c00000-s009.1', 'c00000-s009.2'\]"):
        store.set(segment_id, user="ana", text="gone")


def test_merge_joins_two_neighbours_of_one_speaker(store: OverrideStore) -> None:
    first, second = "c00000-s010", "c00000-s011"  # both SPEAKER_00
    store.set(first, user="ana", ic_ooc="IC")
    store.set(second, user="ana", ic_ooc="OOC", confidence_flag=True)
    store.set(second, user="ana", merged_into=first)
    view = view_of(store)
    joined = f"{first}+{second}"
    assert first not in view.index and second not in view.index
    row = view.loc[joined]
    assert (row["start"], row["end"]) == (BASE.loc[first, "start"], BASE.loc[second, "end"])
    assert row["text"] == f"{BASE.loc[first, 'text']} {BASE.loc[second, 'text']}"
    assert (row["ic_ooc"], row["confidence_flag"], row["speaker_id"]) == ("MIXED", True, "SPEAKER_00")
    with pytest.raises(OverrideError, match="only segments of one speaker merge"):
        store.set("c00000-s012", user="ana", merged_into=joined)  # SPEAKER_01
    with pytest.raises(OverrideError, match="right before it"):
        store.set("c00000-s013", user="ana", merged_into=joined)
    store.undo_last_batch("ana")
    assert {first, second} <= set(view_of(store).index)


def test_boundaries_stay_between_the_neighbours(store: OverrideStore) -> None:
    segment_id = "c00000-s005"  # 10.13-10.79, after s004 (ends 9.97), before s006 (starts 11.21)
    store.set(segment_id, user="ana", start=10.0, end=11.2)
    assert view_of(store).loc[segment_id, ["start", "end"]].tolist() == [10.0, 11.2]
    with pytest.raises(OverrideError, match=r"would overlap the segment before \(c00000-s004, ending at 9.970 s\)"):
        store.set(segment_id, user="ana", start=9.9)
    with pytest.raises(OverrideError, match=r"the latest end is 11.210 s"):
        store.set(segment_id, user="ana", end=11.3)
    with pytest.raises(OverrideError, match=r"start 11\.000 s must come before end 10\.500 s"):
        store.set(segment_id, user="ana", start=11.0, end=10.5)
    assert view_of(store).loc[segment_id, ["start", "end"]].tolist() == [10.0, 11.2]


def test_exports_show_the_segments_as_corrected(store: OverrideStore) -> None:
    store.set("c00000-s011", user="ana", merged_into="c00000-s010")
    store.set("c00000-s013", user="ana", split=split_point(BASE.loc["c00000-s013"], 2))
    store.set("c00000-s014", user="ana", end=29.5)
    metadata = {"session_id": "legacy-sample", "audio_path": "sample.wav", "duration": 30.0}
    vtt = export(view_of(store), metadata, "vtt")
    assert "c00000-s010+c00000-s011\n00:00:18.090 --> 00:00:21.570" in vtt
    assert "c00000-s013.1\n00:00:24.210 -->" in vtt and ": At least,\n" in vtt
    assert "c00000-s013.2\n" in vtt and ": you know, they all call me a Yankee down here.\n" in vtt
    assert "c00000-s014\n00:00:27.810 --> 00:00:29.500" in vtt
    document = json.loads(export(view_of(store), metadata, "json"))
    assert [s["segment_id"] for s in document["segments"]][10:14] == [
        "c00000-s010+c00000-s011",
        "c00000-s012",
        "c00000-s013.1",
        "c00000-s013.2",
    ]
