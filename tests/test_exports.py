"""Exports of the merged view: txt, SRT, WebVTT, JSON and RTTM."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest
from pyannote.database.util import load_rttm

from livereview.core.segments import Segment, Word, segments_to_frame
from livereview.review.exports import EXPORTERS, export, to_json, to_rttm, to_srt, to_txt, to_vtt, write_export
from livereview.review.view import merged_view

METADATA = {"session_id": "demo session", "audio_path": "demo.flac", "duration": 3730.0}


@pytest.fixture
def frame() -> pd.DataFrame:
    """Four segments: IC with a character, OOC, MIXED, and one not yet diarized or labelled."""
    segments = [
        Segment(
            "demo",
            "c00000-s000",
            0,
            1.0,
            4.25,
            "Rain drums on the roof.",
            speaker_id="Dana",
            ic_ooc="IC",
            character_tag="DM",
            words=[Word(1.0, 1.4, " Rain", 0.98), Word(1.4, 1.9, " drums", 0.97)],
            asr_confidence=0.91,
        ),
        Segment(
            "demo",
            "c00000-s001",
            0,
            62.3456,
            64.0,
            "Can I roll <d20> & add?",
            speaker_id="Sam",
            ic_ooc="OOC",
            character_tag="",
        ),
        Segment(
            "demo",
            "c00001-s000",
            1,
            3725.5,
            3727.0,
            "Borin  swings,\nroll damage!",
            speaker_id="Sam",
            ic_ooc="MIXED",
            character_tag="Borin",
        ),
        Segment("demo", "c00001-s001", 1, 3728.0, 3729.5, "Pizza's here."),
    ]
    return merged_view(segments_to_frame(segments), {})


def parse_cues(text: str, separator: str) -> list[tuple[float, float, str]]:
    """(start, end, first text line) of each cue of an SRT or WebVTT file."""
    stamp = rf"(\d\d):(\d\d):(\d\d){re.escape(separator)}(\d\d\d)"
    cues = []
    for match in re.finditer(rf"^{stamp} --> {stamp}\n(.+)$", text, flags=re.MULTILINE):
        h1, m1, s1, ms1, h2, m2, s2, ms2 = (int(g) for g in match.groups()[:8])
        cues.append((h1 * 3600 + m1 * 60 + s1 + ms1 / 1000, h2 * 3600 + m2 * 60 + s2 + ms2 / 1000, match[9]))
    return cues


def test_txt_lines_name_speaker_character_and_label(frame: pd.DataFrame) -> None:
    assert to_txt(frame, METADATA).splitlines() == [
        "[00:00:01] Dana as DM (IC): Rain drums on the roof.",
        "[00:01:02] Sam (OOC): Can I roll <d20> & add?",
        "[01:02:05] Sam as Borin (MIXED): Borin swings, roll damage!",
        "[01:02:08] Unknown: Pizza's here.",
    ]


@pytest.mark.parametrize(
    ("selection", "expected"),
    [
        ("all", ["Dana", "Sam (OOC)", "Sam as Borin", "Unknown"]),
        ("ic", ["Dana", "Sam as Borin"]),
        ("ooc", ["Sam (OOC)", "Sam as Borin"]),
    ],
)
@pytest.mark.parametrize("fmt", ["txt", "srt", "vtt", "json", "rttm"])
def test_selection_keeps_ic_or_ooc_and_mixed_counts_for_both(
    frame: pd.DataFrame, fmt: str, selection: str, expected: list[str]
) -> None:
    text = export(frame, METADATA, fmt, selection)
    if fmt == "json":
        count = len(json.loads(text)["segments"])
    elif fmt == "rttm":
        count = len(text.splitlines())
        expected = [e for e in expected if e != "Unknown"]  # no speaker, no RTTM line
    else:
        present = [label for label in ("Dana", "Sam (OOC)", "Sam as Borin", "Unknown") if label in text]
        assert present == expected
        count = len(present)
    assert count == len(expected)


def test_srt_cues_and_timestamps(frame: pd.DataFrame) -> None:
    text = to_srt(frame, METADATA)
    assert text.startswith("1\n00:00:01,000 --> 00:00:04,250\nDana as DM (IC): Rain drums")
    assert "\n\n4\n01:02:08,000 --> 01:02:09,500\nUnknown: Pizza's here.\n" in text
    assert "00:01:02,346 --> 00:01:04,000" in text
    cues = parse_cues(text, ",")
    assert [(start, end) for start, end, _ in cues] == [
        (1.0, 4.25),
        (62.346, 64.0),
        (3725.5, 3727.0),
        (3728.0, 3729.5),
    ]
    assert cues[2][2] == "Sam as Borin (MIXED): Borin swings, roll damage!"
    assert re.findall(r"^\d+$", text, flags=re.MULTILINE) == ["1", "2", "3", "4"]


def test_vtt_header_timestamps_and_escaping(frame: pd.DataFrame) -> None:
    text = to_vtt(frame, METADATA, "ooc")
    assert text.startswith("WEBVTT\n\nc00000-s001\n00:01:02.346 --> 00:01:04.000\n")
    assert "Can I roll &lt;d20&gt; &amp; add?" in text
    assert [(s, e) for s, e, _ in parse_cues(text, ".")] == [(62.346, 64.0), (3725.5, 3727.0)]
    assert to_vtt(frame.iloc[:0], METADATA) == "WEBVTT\n"


def test_json_has_metadata_and_plain_segments(frame: pd.DataFrame) -> None:
    document = json.loads(to_json(frame, METADATA))
    assert document["metadata"] == {**METADATA, "selection": "all"}
    first, second, _, last = document["segments"]
    assert (first["segment_id"], first["start"], first["end"]) == ("c00000-s000", 1.0, 4.25)
    assert second["start"] == 62.346
    assert first["words"][1] == {"start": 1.4, "end": 1.9, "word": " drums", "probability": 0.97}
    assert first["asr_confidence"] == 0.91
    assert second["asr_confidence"] is None
    assert last["speaker_id"] is None
    assert first["overridden"] == []
    assert first["confidence_flag"] is False


def test_rttm_parses_with_pyannote(frame: pd.DataFrame, tmp_path: Path) -> None:
    path = write_export(frame, METADATA, "rttm", tmp_path / "out" / "demo.rttm")
    assert path.read_text().splitlines()[0] == ("SPEAKER demo_session 1 1.000 3.250 <NA> <NA> Dana <NA> <NA>")
    annotations = load_rttm(str(path))
    assert list(annotations) == ["demo_session"]
    turns = [
        (round(turn.start, 3), round(turn.end, 3), speaker)
        for turn, _, speaker in annotations["demo_session"].itertracks(yield_label=True)
    ]
    assert turns == [(1.0, 4.25, "Dana"), (62.346, 64.0, "Sam"), (3725.5, 3727.0, "Sam")]


def test_exports_show_the_operators_corrections(frame: pd.DataFrame) -> None:
    segments = frame.drop(columns=["confidence_flag", "overridden"])
    view = merged_view(segments, {"c00001-s001": {"speaker_id": "Riley", "ic_ooc": "OOC"}})
    assert to_txt(view, METADATA, "ooc").splitlines()[-1] == "[01:02:08] Riley (OOC): Pizza's here."
    assert to_rttm(view, METADATA).splitlines()[-1].split()[7] == "Riley"


@pytest.mark.parametrize("fmt", sorted(EXPORTERS))
def test_write_export_writes_each_format(frame: pd.DataFrame, fmt: str, tmp_path: Path) -> None:
    path = write_export(frame, METADATA, fmt, tmp_path / f"demo.{fmt}", selection="ic")
    assert path.read_text(encoding="utf-8") == export(frame, METADATA, fmt, "ic")


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"fmt": "docx"}, "unknown export format 'docx'"),
        ({"selection": "npc"}, "unknown selection 'npc'"),
        ({"metadata": {"session_id": "x"}}, r"lacks \['audio_path', 'duration'\]"),
    ],
)
def test_bad_arguments_are_refused(frame: pd.DataFrame, arguments: dict, message: str) -> None:
    call = {"metadata": METADATA, "fmt": "txt", "selection": "all"} | arguments
    with pytest.raises(ValueError, match=message):
        export(frame, call["metadata"], call["fmt"], call["selection"])


def test_missing_columns_are_refused(frame: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match=r"lacks columns \['ic_ooc'\]"):
        to_txt(frame.drop(columns="ic_ooc"), METADATA)


@pytest.mark.parametrize(
    ("fmt", "selection"), [("srt", "all"), ("vtt", "all"), ("rttm", "all"), ("txt", "all"), ("srt", "ooc")]
)
def test_exports_match_hand_checked_files_byte_for_byte(frame: pd.DataFrame, fmt: str, selection: str) -> None:
    expected = Path(__file__).parent / "data" / "exports" / f"{selection}.{fmt}"
    assert export(frame, METADATA, fmt, selection).encode("utf-8") == expected.read_bytes()
