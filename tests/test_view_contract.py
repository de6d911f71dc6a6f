"""The merged view's frozen schema: the processed demo's view conforms, and every consumer takes exactly that schema."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from downstream_helpers import copy_session, find_segment

import livereview
from livereview.review.exports import EXPORTERS, REQUIRED_COLUMNS, export
from livereview.review.snippets import SNIPPET_COLUMNS, plan_clips
from livereview.review.view import VIEW_SCHEMA, ViewSchemaError, conform_view, require_view_columns
from livereview.server.hub import _snapshot_members
from livereview.stages.knowledge import KNOWLEDGE_INPUT_COLUMNS, build_knowledge
from livereview.stages.scenes import SCENE_INPUT_COLUMNS, find_scenes
from livereview.ui.grid import ROW_COLUMNS, base_row, merged_rows

pytestmark = pytest.mark.slow

#: What each consumer reads of the merged view.
CONSUMERS = {
    "exports": REQUIRED_COLUMNS,
    "snippets": SNIPPET_COLUMNS,
    "scenes": SCENE_INPUT_COLUMNS,
    "knowledge": KNOWLEDGE_INPUT_COLUMNS,
    "grid rows": tuple(ROW_COLUMNS),
}


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory, demo_session: livereview.Session) -> livereview.Session:
    """The processed demo with corrections of every overridable field."""
    copy = copy_session(demo_session, tmp_path_factory.mktemp("contract"))
    segment = find_segment(copy, "get for you tonight")
    other = find_segment(copy, "pineapple")
    copy.set_override(
        segment,
        user="ana",
        text="What can old Tom get for you tonight?",
        character_tag="Tom",
        ic_ooc="IC",
        confidence_flag=True,
    )
    copy.set_override(other, user="ana", speaker_id=copy.view().loc[segment, "speaker_id"])
    yield copy
    copy.close()


@pytest.fixture(scope="module")
def view(session: livereview.Session) -> pd.DataFrame:
    return session.view()


def test_the_view_of_a_real_run_is_exactly_the_schema(view: pd.DataFrame) -> None:
    assert list(view.columns) == list(VIEW_SCHEMA)
    assert {name: str(dtype) for name, dtype in view.dtypes.items()} == VIEW_SCHEMA
    assert view.index.is_unique and list(view.index) == list(view["segment_id"])
    assert all(isinstance(t, tuple) for t in view["overridden"])
    assert all(isinstance(w, list) for w in view["words"])
    assert view["confidence_flag"].sum() == 1
    assert conform_view(view) is view  # a conforming view is returned as it is, nothing converted


def test_every_consumer_reads_only_what_the_schema_promises() -> None:
    for consumer, columns in CONSUMERS.items():
        assert set(columns) <= set(VIEW_SCHEMA), consumer


def test_every_consumer_takes_the_view_as_it_is(session: livereview.Session, view: pd.DataFrame) -> None:
    metadata = {"session_id": session.session_id, "audio_path": str(session.audio_path), "duration": 174.0}
    for fmt in EXPORTERS:
        assert export(view, metadata, fmt)
    clips = plan_clips(view, selection="all", by="segment", extension="flac", speaker_names={}, override_seqs={})
    assert [c.clip_id for c in clips] == list(view.sort_values(["start", "end"], kind="stable").index)
    scenes = find_scenes(view)
    assert sum(len(ids) for ids in scenes["segment_ids"]) == len(view)
    knowledge = build_knowledge(view, party=session.party)
    assert set(knowledge.mentions["segment_id"]) <= set(view.index)
    rows = merged_rows([base_row(s) for s in session.segment_list()], session.corrected_values())
    by_id = {row["id"]: row for row in rows}
    for segment_id, row in view.iterrows():
        grid = by_id[segment_id]
        assert (grid["speaker"], grid["ic_ooc"], grid["character"], grid["text"]) == tuple(
            None if isinstance(v, float) and np.isnan(v) else v
            for v in row[["speaker_id", "ic_ooc", "character_tag", "text"]]
        )
        assert grid["edited"] == list(row["overridden"]) and grid["flag"] == row["confidence_flag"]


def test_the_server_snapshot_is_the_schema_without_words(session: livereview.Session, view: pd.DataFrame) -> None:
    snapshot = json.loads("{" + _snapshot_members(session, 0) + "}")
    segments = snapshot["segments"]
    assert len(segments) == len(view)
    assert all(list(row) == [c for c in VIEW_SCHEMA if c != "words"] for row in segments)
    tom = next(row for row in segments if row["text"] == "What can old Tom get for you tonight?")
    assert tom["character_tag"] == "Tom" and tom["confidence_flag"] is True


@pytest.mark.parametrize("consumer", ["snippets", "scenes", "knowledge"])
def test_a_view_without_a_column_a_consumer_reads_is_refused(view: pd.DataFrame, consumer: str) -> None:
    missing = CONSUMERS[consumer][-1]
    with pytest.raises(ViewSchemaError, match=rf"{consumer} needs the merged view's columns \['{missing}'\]"):
        require_view_columns(view.drop(columns=[missing]), CONSUMERS[consumer], consumer=consumer)
    with pytest.raises(ViewSchemaError, match="does not promise"):
        require_view_columns(view, [*CONSUMERS[consumer], "player"], consumer=consumer)


def test_conform_view_casts_and_refuses(view: pd.DataFrame, tmp_path: Path) -> None:
    loose = view.astype(object)
    conformed = conform_view(loose)
    assert {name: str(dtype) for name, dtype in conformed.dtypes.items()} == VIEW_SCHEMA
    pd.testing.assert_frame_equal(conformed, view)
    with pytest.raises(ViewSchemaError, match=r"lacks columns \['ic_ooc'\]"):
        conform_view(view.drop(columns=["ic_ooc"]))
    with pytest.raises(ViewSchemaError, match="'chunk_id' cannot be int64"):
        conform_view(view.assign(chunk_id="first"))
