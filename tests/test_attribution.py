"""Who said each word: words over speaker turns, other speakers heard, speaker changes in the exports."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import webvtt

from livereview.core.segments import Segment, Word, segments_to_frame
from livereview.review.attribution import other_speakers, speaker_lines, word_speaker_accuracy, word_table
from livereview.review.exports import to_json, to_srt, to_txt, to_vtt
from livereview.review.view import merged_view

METADATA = {"session_id": "s", "audio_path": "s.flac", "duration": 30.0}


def _words(*spec: tuple[float, float, str]) -> list[Word]:
    return [Word(start, end, f" {text}", 0.9) for start, end, text in spec]


@pytest.fixture
def view() -> pd.DataFrame:
    """Three segments: Dana cut in by Sam; Sam heard under Dana's words; one with no turn at all."""
    segments = [
        Segment(
            "s", "c00000-s000", 0, 0.0, 4.0, "Roll for it. Nat twenty!", speaker_id="Dana", ic_ooc="OOC",
            character_tag="", words=_words((0.0, 0.5, "Roll"), (0.5, 0.8, "for"), (0.8, 1.2, "it."),
                                           (2.5, 3.0, "Nat"), (3.0, 3.8, "twenty!")),
        ),
        Segment(
            "s", "c00000-s001", 0, 5.0, 8.0, "The door creaks open.", speaker_id="Dana", ic_ooc="IC",
            character_tag="DM", words=_words((5.0, 5.4, "The"), (5.4, 6.0, "door"), (6.0, 6.8, "creaks"),
                                             (6.8, 7.6, "open.")),
        ),
        Segment(
            "s", "c00000-s002", 0, 20.0, 21.0, "Pizza.", speaker_id="Sam", ic_ooc="OOC", character_tag="",
            words=_words((20.0, 21.0, "Pizza.")),
        ),
    ]  # fmt: skip
    return merged_view(segments_to_frame(segments), {})


TURNS = pd.DataFrame(
    [(0.0, 2.0, "Dana"), (2.3, 4.0, "Sam"), (5.0, 8.0, "Dana"), (5.5, 7.0, "Sam")],
    columns=["start", "end", "speaker_id"],
)


def test_each_word_takes_the_speaker_heard_during_it(view: pd.DataFrame) -> None:
    words = word_table(view, TURNS)
    assert words.groupby("segment_id")["speaker_id"].apply(list).to_dict() == {
        "c00000-s000": ["Dana", "Dana", "Dana", "Sam", "Sam"],  # Sam cuts in
        "c00000-s001": ["Dana"] * 4,  # overlapped: the segment's own voice keeps its words
        "c00000-s002": ["Sam"],  # no turn: the segment's speaker
    }
    assert words["word_index"].tolist() == [0, 1, 2, 3, 4, 0, 1, 2, 3, 0]


def test_a_segment_lists_the_other_speakers_heard_during_it(view: pd.DataFrame) -> None:
    assert other_speakers(view, TURNS).to_dict() == {
        "c00000-s000": ("Sam",),
        "c00000-s001": ("Sam",),
        "c00000-s002": (),
    }
    brief = pd.DataFrame([(5.0, 8.0, "Dana"), (6.0, 6.2, "Sam")], columns=["start", "end", "speaker_id"])
    assert other_speakers(view, brief)["c00000-s001"] == ()  # 0.2 s is under the minimum


def test_a_speaker_change_splits_every_transcript_export(view: pd.DataFrame) -> None:
    assert to_txt(view, METADATA, turns=TURNS).splitlines()[:2] == [
        "[00:00:00] Dana (OOC): Roll for it.",
        "[00:00:02] Sam (OOC): Nat twenty!",
    ]
    assert to_txt(view, METADATA).splitlines()[0] == "[00:00:00] Dana (OOC): Roll for it. Nat twenty!"
    cues = list(webvtt.from_string(to_vtt(view, METADATA, turns=TURNS)))
    assert [(c.identifier, c.start, c.end) for c in cues[:2]] == [
        ("c00000-s000", "00:00:00.000", "00:00:02.500"),
        ("c00000-s000#2", "00:00:02.500", "00:00:04.000"),
    ]
    assert [c.identifier for c in cues[2:]] == ["c00000-s001", "c00000-s002"]  # ids of whole segments unchanged
    assert to_srt(view, METADATA, turns=TURNS).count(" --> ") == 4
    document = json.loads(to_json(view, METADATA, turns=TURNS))
    first = document["segments"][0]
    assert first["segment_id"] == "c00000-s000" and first["other_speakers"] == ["Sam"]
    assert [w["speaker_id"] for w in first["words"]] == ["Dana", "Dana", "Dana", "Sam", "Sam"]
    assert [(line["speaker_id"], line["text"]) for line in first["lines"]] == [
        ("Dana", "Roll for it."),
        ("Sam", "Nat twenty!"),
    ]
    assert "lines" not in document["segments"][1]


def test_a_line_by_another_speaker_drops_the_character_tag() -> None:
    row = {"start": 0.0, "end": 2.0, "text": "I hit. Nice!", "speaker_id": "Ana", "character_tag": "Morgan"}
    words = [
        {"start": 0.0, "end": 0.4, "word": " I", "speaker_id": "Ana"},
        {"start": 0.4, "end": 0.9, "word": " hit.", "speaker_id": "Ana"},
        {"start": 1.2, "end": 2.0, "word": " Nice!", "speaker_id": "Ben"},
    ]
    lines = speaker_lines(row, words)
    assert [(line["speaker_id"], line["character_tag"], line["text"]) for line in lines] == [
        ("Ana", "Morgan", "I hit."),
        ("Ben", "", "Nice!"),
    ]


def test_a_corrected_text_is_never_split_or_lost(view: pd.DataFrame) -> None:
    corrected = merged_view(view.drop(columns=["confidence_flag", "overridden"]), {"c00000-s000": {"text": "Roll it!"}})
    assert to_txt(corrected, METADATA, turns=TURNS).splitlines()[0] == "[00:00:00] Dana (OOC): Roll it!"
    words = [{"start": 0.0, "end": 1.0, "word": " Other", "speaker_id": "Ana"}]
    assert speaker_lines({"text": "Not the words", "speaker_id": "Ana"}, words) == [
        {"text": "Not the words", "speaker_id": "Ana"}
    ]


def test_word_speaker_accuracy_maps_speakers_one_to_one() -> None:
    reference = pd.DataFrame([(0.0, 2.0, "alice"), (2.0, 4.0, "bob")], columns=["start", "end", "speaker_id"])
    words = pd.DataFrame(
        {"start": [0.1, 1.0, 2.1, 3.0, 5.0], "end": [0.5, 1.5, 2.5, 3.5, 5.5], "speaker_id": ["X", "X", "Y", "X", "Y"]}
    )
    assert word_speaker_accuracy(words, reference) == pytest.approx(3 / 4)  # the word at 5 s has no reference speaker
