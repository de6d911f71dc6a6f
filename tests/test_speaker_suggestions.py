"""Suggesting who is who: the game master and which player each diarized speaker is.

On the real demo run the suggestions are checked against the reference RTTM (each diarized
speaker's truth is the reference player its turns overlap most); small hand-made views check
each cue on its own, each built so that the suggestion fails when that cue is ignored.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from downstream_helpers import copy_session
from pyannote.core import Annotation
from pyannote.core import Segment as Span
from pyannote.database.util import load_rttm

import livereview
from livereview.core.party import Party
from livereview.demo import demo_rttm_path
from livereview.review.speaker_suggestions import GAME_MASTER, PLAYER, SUGGESTION_COLUMNS, suggest_speaker_map

PARTY = Party.from_dict(
    {
        "game_master": "Dana",
        "characters": [
            {"name": "Morgan", "player": "Alex", "aliases": ["Morg"]},
            {"name": "Duncan", "player": "Sam"},
            {"name": "Flint", "player": "Riley"},
        ],
    }
)
GM, A, B, C = "SPEAKER_00", "SPEAKER_01", "SPEAKER_02", "SPEAKER_03"
NEUTRAL = "that sounds fine to me"


#: What a line of :func:`make_view` leaves out: seconds, segment type, character tag, corrected fields.
LINE_DEFAULTS = (2.0, "TABLE_TALK", "", ())
VIEW_COLUMNS = ("segment_id", "start", "end", "speaker_id", "text", "segment_type", "ic_ooc", "character_tag")


def make_view(lines: list[tuple[Any, ...]], gap: float = 0.5) -> pd.DataFrame:
    """A merged view of ``(speaker, text[, seconds[, segment_type[, character_tag[, overridden]]]])`` lines in order."""
    rows, start = [], 0.0
    for number, line in enumerate(lines):
        speaker, text, seconds, segment_type, tag, overridden = (*line, *LINE_DEFAULTS[len(line) - 2 :])
        rows.append(
            {
                "segment_id": f"c00000-s{number:03d}",
                "start": start,
                "end": start + seconds,
                "speaker_id": speaker,
                "text": text,
                "segment_type": segment_type,
                "ic_ooc": "OOC" if segment_type in ("TABLE_TALK", "MECHANICS") else "IC",
                "character_tag": tag,
                "overridden": overridden,
            }
        )
        start += seconds + gap
    frame = pd.DataFrame(rows, columns=[*VIEW_COLUMNS, "overridden"])
    return frame.set_index("segment_id", drop=False)


def narrating_gm(count: int = 6) -> list[tuple[Any, ...]]:
    """The game master's share of a table: most talk, all narration, nothing that names anyone."""
    return [(GM, "The rain keeps falling over the old hills.", 4.0, "DM_NARRATION")] * count


def suggested(table: pd.DataFrame) -> dict[str, Any]:
    """Speaker -> suggested person (NaN as None)."""
    return {row.speaker_id: (None if pd.isna(row.player) else row.player) for row in table.itertuples()}


def row_of(table: pd.DataFrame, speaker: str) -> pd.Series:
    return table.set_index("speaker_id").loc[speaker]


# -- the real demo run -----------------------------------------------------------------------------


def reference_players(session: livereview.Session) -> dict[str, str]:
    """Each diarized speaker's truth: the reference player (demo RTTM) its turns overlap most."""
    reference = next(iter(load_rttm(str(demo_rttm_path())).values()))
    hypothesis = Annotation()
    for number, turn in enumerate(session.diarization(corrected=False).itertuples()):
        hypothesis[Span(turn.start, turn.end), number] = turn.speaker_id
    overlap = reference * hypothesis  # seconds each reference player shares with each diarized speaker
    players, speakers = reference.labels(), hypothesis.labels()
    return {speaker: players[int(np.argmax(overlap[:, j]))] for j, speaker in enumerate(speakers)}


@pytest.fixture(scope="module")
def demo_suggestions(demo_session: livereview.Session) -> tuple[pd.DataFrame, dict[str, str]]:
    return demo_session.suggest_speaker_map(), reference_players(demo_session)


@pytest.mark.slow
def test_the_demo_speakers_are_suggested_as_the_players_they_are(
    demo_suggestions: tuple[pd.DataFrame, dict[str, str]],
) -> None:
    table, truth = demo_suggestions
    assert list(table.columns) == list(SUGGESTION_COLUMNS)
    assert set(table["speaker_id"]) == set(truth) and len(truth) == 4
    right = {s: p for s, p in suggested(table).items() if p == truth[s]}
    print("\ndemo suggestions:\n" + table.to_string())
    print(f"{len(right)} of {len(truth)} right; truth {truth}")
    assert len(right) >= 3, (table.to_string(), truth)
    gm = table[table["role"] == GAME_MASTER]
    assert len(gm) == 1 and truth[gm["speaker_id"].iloc[0]] == "Dana" and gm["player"].iloc[0] == "Dana"
    assert "of talk time" in gm["evidence"].iloc[0] and "narration/NPC lines" in gm["evidence"].iloc[0]
    assert table["confidence"].between(0, 1).all() and (table["confidence"] > 0.3).all()
    assert table["player"].is_unique and not table["given"].any()
    players = table[table["role"] == PLAYER]
    assert all(PARTY.character_of(p).name == c for p, c in zip(players["player"], players["character"], strict=True))


@pytest.mark.slow
def test_confirming_writes_the_speaker_map_the_view_and_the_classifier_then_use(
    demo_session: livereview.Session, tmp_path: Path
) -> None:
    session = copy_session(demo_session, tmp_path)
    try:
        table = session.suggest_speaker_map()
        assert session.confirm_speaker_map(table, min_confidence=1.01) == {}  # nothing that sure
        assert not session.paths.speaker_map.exists() or json.loads(session.paths.speaker_map.read_text()) == {}
        written = session.confirm_speaker_map()
        expected = dict(zip(table["speaker_id"], table["player"], strict=True))
        assert written == expected
        assert json.loads((session.directory / "speaker_map.json").read_text(encoding="utf-8")) == expected
        assert session.confirm_speaker_map() == {}  # already there: nothing written again
        # Reopened, the suggestions are the map, as given.
        reopened = livereview.open_session(session.directory)
        again = reopened.suggest_speaker_map()
        assert again["given"].all() and (again["confidence"] == 1.0).all()
        assert suggested(again) == expected and set(again["evidence"]) == {"in speaker_map.json"}
        # The classifier sees players: the game master's rows are the game master's, the players' tagged.
        frame = reopened.classification_frame(reopened.segment_list())
        gm = next(s for s, p in expected.items() if p == "Dana")
        assert set(frame["player"]) == set(expected.values())
        assert frame.loc[frame["speaker_id"] == gm, "is_game_master"].all()
        assert not frame.loc[frame["speaker_id"] != gm, "is_game_master"].any()
        labels = reopened.preview_reclassify(classifier="keywords", progress=False)
        view = reopened.view()
        riley = next(s for s, p in expected.items() if p == "Riley")
        ic = labels.index[(labels["ic_ooc"] == "IC") & (view.loc[labels.index, "speaker_id"] == riley)]
        assert len(ic) and (labels.loc[ic, "character_tag"] == "Flint").all()
        reopened.close()
    finally:
        session.close()


# -- one cue at a time, on hand-made views ---------------------------------------------------------


def test_the_game_master_is_the_one_who_narrates_when_talk_time_is_even() -> None:
    lines = []
    for _ in range(4):
        lines += [
            (A, "The old bridge creaks under the weight of the cart.", 3.0, "DM_NARRATION"),
            (B, "I step carefully along the left rail.", 3.0, "CHARACTER_ACTION"),
        ]
    table = suggest_speaker_map(make_view(lines), None)
    assert row_of(table, A)["role"] == GAME_MASTER and row_of(table, B)["role"] == PLAYER
    assert row_of(table, A)["confidence"] > 0.5
    assert "50% of talk time, 100% narration/NPC lines" in row_of(table, A)["evidence"]
    # The same talk without the classifier's narration: nothing tells them apart.
    flat = [(speaker, text, seconds, "TABLE_TALK") for speaker, text, seconds, _ in lines]
    assert (suggest_speaker_map(make_view(flat), None)["confidence"] == 0).all()


def test_a_name_said_to_someone_points_at_the_turn_it_calls() -> None:
    lines = [
        *narrating_gm(),
        (GM, "Morgan, what do you do?"),
        (A, NEUTRAL),
        (GM, "Duncan goes first."),
        (B, NEUTRAL),
        (C, NEUTRAL),
        (GM, "Okay, Morgan, you're up again."),
        (A, NEUTRAL),
    ]
    table = suggest_speaker_map(make_view(lines), PARTY)
    assert suggested(table) == {GM: "Dana", A: "Alex", B: "Sam", C: "Riley"}
    assert "answers to Morgan 2×" in row_of(table, A)["evidence"]
    assert "the one player left" in row_of(table, C)["evidence"]
    assert row_of(table, A)["confidence"] > row_of(table, C)["confidence"] > 0
    # Without the names, the players are a coin toss: none is suggested.
    blind = [(s, NEUTRAL if s != GM else "The road goes on.") for s, *_ in lines]
    assert suggested(suggest_speaker_map(make_view(blind), PARTY))[A] is None


def test_a_speaker_never_addresses_their_own_character() -> None:
    party = Party.from_dict(
        {
            "game_master": "Dana",
            "characters": [{"name": "Morgan", "player": "Alex"}, {"name": "Duncan", "player": "Sam"}],
        }
    )
    lines = [*narrating_gm(3), (A, "Keep your axe ready, Duncan."), *narrating_gm(3), (B, NEUTRAL), (A, NEUTRAL)]
    table = suggest_speaker_map(make_view(lines), party)
    assert suggested(table) == {GM: "Dana", A: "Alex", B: "Sam"}  # A said Duncan: A is not Duncan's player


def test_self_references_name_the_speaker() -> None:
    lines = [
        *narrating_gm(),
        (A, "Hi, I'm Morgan, the one with the staff."),
        (GM, "The fire crackles."),
        (B, "Flint draws his bow and waits."),
        (GM, "The wind howls."),
        (C, NEUTRAL),
    ]
    table = suggest_speaker_map(make_view(lines), PARTY)
    assert suggested(table) == {GM: "Dana", A: "Alex", B: "Riley", C: "Sam"}
    assert "introduces itself as Morgan" in row_of(table, A)["evidence"]
    assert "narrates Flint's actions" in row_of(table, B)["evidence"]
    # "Morgan here" says it too; a view of only the columns read is enough.
    here = make_view([*narrating_gm(), (A, "Morgan here, checking the door.")])[["start", "end", "speaker_id", "text"]]
    assert suggested(suggest_speaker_map(here, PARTY))[A] == "Alex"


def test_character_tags_on_a_speakers_lines_name_its_player() -> None:
    lines = [
        *narrating_gm(),
        (A, "I lift the lantern high.", 2.0, "CHARACTER_ACTION", "Duncan"),
        (B, "We should go back.", 2.0, "CHARACTER_SPEECH", "Morgan"),
        (A, "Behind me, all of you.", 2.0, "CHARACTER_SPEECH", "Duncan"),
        (C, NEUTRAL),
    ]
    table = suggest_speaker_map(make_view(lines), PARTY)
    assert suggested(table) == {GM: "Dana", A: "Sam", B: "Alex", C: "Riley"}
    assert "2 IC lines tagged Duncan" in row_of(table, A)["evidence"]


def test_the_speaker_map_and_an_operators_correction_win_over_the_cues() -> None:
    lines = [
        *narrating_gm(),
        (A, "Hi, I'm Morgan."),
        (GM, "The fire crackles."),
        ("Sam", "I'm Morgan, for sure.", 2.0, "TABLE_TALK", "", ("speaker_id",)),  # a line of B, re-voiced
        (B, NEUTRAL),
        (C, NEUTRAL),
    ]
    view = make_view(lines)
    corrected = view.index[view["speaker_id"] == "Sam"][0]
    corrections = pd.DataFrame(
        [{"segment_id": corrected, "field": "speaker_id", "value": "Sam", "base_value": B, "user": "ana"}]
    )
    table = suggest_speaker_map(view, PARTY, speaker_map={A: "Riley"}, corrections=corrections)
    assert set(table["speaker_id"]) == {GM, A, B, C}  # "Sam" is no diarized speaker
    assert row_of(table, A)[["player", "confidence", "given"]].tolist() == ["Riley", 1.0, True]
    assert row_of(table, A)["evidence"] == "in speaker_map.json"
    assert row_of(table, B)[["player", "confidence", "given"]].tolist() == ["Sam", 1.0, True]
    assert row_of(table, B)["evidence"] == "an operator corrected one of its lines to Sam"
    # What is given is no one else's: C is the one player left.
    assert suggested(table) == {GM: "Dana", A: "Riley", B: "Sam", C: "Alex"}
    assert not row_of(table, C)["given"]


def test_a_diarized_label_that_is_a_players_name_is_given() -> None:
    table = suggest_speaker_map(make_view([*narrating_gm(), ("Alex", NEUTRAL), (B, NEUTRAL)]), PARTY)
    assert row_of(table, "Alex")[["player", "character", "given"]].tolist() == ["Alex", "Morgan", True]


def test_without_a_party_only_the_game_master_is_suggested() -> None:
    lines = [*narrating_gm(), (A, "Hi, I'm Morgan."), (GM, "Duncan goes first."), (B, NEUTRAL), (C, NEUTRAL)]
    table = suggest_speaker_map(make_view(lines), None)
    assert table["player"].isna().all() and table["character"].isna().all()
    assert (table["role"] == GAME_MASTER).sum() == 1 and row_of(table, GM)["role"] == GAME_MASTER
    assert row_of(table, GM)["confidence"] > 0.5
    assert (table.loc[table["role"] == PLAYER, "confidence"] == 0).all()
    assert "unknown without a party" in row_of(table, A)["evidence"]


def test_more_speakers_than_people_leave_the_extra_one_unsuggested() -> None:
    lines = [
        *narrating_gm(),
        (GM, "Morgan, what do you do?"),
        (A, NEUTRAL),
        (GM, "Duncan, what do you do?"),
        (B, NEUTRAL),
        (GM, "Flint, what do you do?"),
        (C, NEUTRAL),
        ("SPEAKER_04", "mm", 0.4),
    ]
    table = suggest_speaker_map(make_view(lines), PARTY)
    assert suggested(table) == {GM: "Dana", A: "Alex", B: "Sam", C: "Riley", "SPEAKER_04": None}
    assert (
        row_of(table, "SPEAKER_04")["confidence"] == 0 and "nothing points" in row_of(table, "SPEAKER_04")["evidence"]
    )


def test_an_empty_view_suggests_nothing() -> None:
    table = suggest_speaker_map(make_view([]), PARTY)
    assert table.empty and list(table.columns) == list(SUGGESTION_COLUMNS)


# -- the review's speaker panel, kernel side ------------------------------------------------------


def offered_when(review: Any, condition: Any, timeout: float = 30.0) -> dict[str, dict[str, Any]]:
    """The review's suggestions by speaker, once ``condition(them)`` holds (they are made on a thread)."""
    deadline = time.monotonic() + timeout
    while True:
        review.flush()
        offered = {s["speaker"]: s for s in review.grid.speaker_suggestions}
        if condition(offered):
            return offered
        assert time.monotonic() < deadline, f"the review's suggestions stayed {offered}"
        time.sleep(0.05)


@pytest.mark.slow
def test_the_review_offers_each_unmapped_speaker_its_suggestion_and_confirms_it_in_one_click(
    demo_session: livereview.Session, tmp_path: Path
) -> None:
    session = copy_session(demo_session, tmp_path)
    review = livereview.review(session, user="ana", role="editor")
    review.grid.send = review.playback.send = lambda *args, **kwargs: None  # no browser here
    try:
        table = session.suggest_speaker_map()
        offered = offered_when(review, lambda found: set(found) == set(table["speaker_id"]))
        first = table.iloc[1]  # a player
        shown = offered[first["speaker_id"]]
        assert (shown["player"], shown["character"], shown["role"]) == (first["player"], first["character"], PLAYER)
        assert shown["confidence"] == first["confidence"] and shown["evidence"] == first["evidence"]
        # The confirm button sends the speaker panel's map_speaker message.
        message = {"kind": "map_speaker", "speaker": shown["speaker"], "player": shown["player"]}
        review._on_grid_message(review.grid, message, [])
        review.flush()
        assert session.speaker_map == {first["speaker_id"]: first["player"]}
        assert json.loads(session.paths.speaker_map.read_text(encoding="utf-8")) == session.speaker_map
        assert review.grid.notice["text"] == f"ana mapped speaker {first['speaker_id']} to {first['player']}."
        left = set(table["speaker_id"]) - {first["speaker_id"]}
        offered_when(review, lambda found: set(found) == left)  # the mapped one is no longer offered
        # From Python, as the button does.
        gm = table.iloc[0]
        review.confirm_suggestion(gm["speaker_id"])
        offered_when(review, lambda found: gm["speaker_id"] not in found)
        assert session.speaker_map[gm["speaker_id"]] == "Dana"
        with pytest.raises(KeyError, match="no player is suggested"):
            review.confirm_suggestion(gm["speaker_id"])  # mapped now: nothing to confirm
    finally:
        review.close()
        session.close()
