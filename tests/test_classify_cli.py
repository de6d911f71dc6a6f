"""``livereview classify TRANSCRIPT.jsonl``: labelling an existing transcript."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import pytest

from livereview.cli import commands as cli
from livereview.cli.classify import add_classify_command, transcript_frame
from livereview.core.party import load_party
from livereview.stages.classify import CLASSIFICATION_COLUMNS

PARTY = """\
game_master: Dana
characters:
  - name: Mira
    player: Alex
  - name: Brannoc
    player: Sam
    aliases: [Bran]
"""
LINES = [
    {"segment_id": "a", "start": 0.0, "end": 2.0, "speaker": "Dana", "text": "The cave mouth yawns before you."},
    {"speaker": "Alex", "text": "I light a torch and step inside.", "note": "kept"},
    {"speaker": "Bran", "text": "Is the pizza here yet? I'm starving."},
    {"speaker": "SPEAKER_07", "text": "I rolled a twelve for perception."},
]


def write_lines(path: Path, lines: list[object]) -> Path:
    path.write_text("".join((line if isinstance(line, str) else json.dumps(line)) + "\n" for line in lines))
    return path


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    return {
        "transcript": write_lines(tmp_path / "transcript.jsonl", LINES),
        "party": write_lines(tmp_path / "party.yaml", [PARTY]),
        "out": tmp_path / "out" / "labelled.jsonl",
    }


def run(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="livereview")
    add_classify_command(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["classify", *argv])
    return args.handler(args)


def read(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_output_is_the_input_plus_the_classification(files: dict[str, Path], capsys: pytest.CaptureFixture) -> None:
    status = run(
        str(files["transcript"]), "--party", str(files["party"]), "--classifier", "keywords", "-o", str(files["out"])
    )
    assert status == 0
    assert "classified 4 segments" in capsys.readouterr().out
    labelled = read(files["out"])
    assert [{k: v for k, v in row.items() if k not in CLASSIFICATION_COLUMNS} for row in labelled] == LINES
    assert all(set(CLASSIFICATION_COLUMNS) <= set(row) for row in labelled)
    assert [row["character_tag"] for row in labelled] == ["DM", "Mira", "", ""]
    assert labelled[0]["classifier"] == "keywords-0.2"


def test_default_classifier_with_party(files: dict[str, Path]) -> None:
    assert run(str(files["transcript"]), "--party", str(files["party"]), "-o", str(files["out"])) == 0
    labelled = read(files["out"])
    assert [row["ic_ooc"] for row in labelled] == ["IC", "IC", "OOC", "OOC"]
    assert [row["segment_type"] for row in labelled] == ["DM_NARRATION", "CHARACTER_ACTION", "TABLE_TALK", "MECHANICS"]
    assert [row["character_tag"] for row in labelled] == ["DM", "Mira", "", ""]
    assert all(0 <= row["ic_ooc_confidence"] <= 1 for row in labelled)


def test_speakers_map_to_players(files: dict[str, Path]) -> None:
    party = load_party(files["party"])
    records = [*LINES, {"speaker": "Alex", "text": "x", "is_game_master": True}]
    frame = transcript_frame(records, party)
    assert frame["player"].tolist() == ["Dana", "Alex", "Sam", "SPEAKER_07", "Alex"]
    assert frame["is_game_master"].tolist() == [True, False, False, None, True]
    assert frame["segment_id"].tolist() == ["a", "line-00002", "line-00003", "line-00004", "line-00005"]
    assert transcript_frame(LINES, None)["is_game_master"].isna().all()


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        ([LINES[0], "{not json"], r"transcript\.jsonl line 2: not JSON"),
        ([LINES[0], LINES[1], {"text": "who said this?"}], r"line 3: 'speaker' must be present and a string"),
        ([{"speaker": "Dana", "text": 5}], r"line 1: 'text' must be present and a string"),
        ([[1, 2]], r"line 1: expected a JSON object with 'text' and 'speaker', got list"),
    ],
)
def test_bad_lines_are_named(tmp_path: Path, lines: list[object], message: str) -> None:
    transcript = write_lines(tmp_path / "transcript.jsonl", lines)
    with pytest.raises(ValueError, match=message):
        run(str(transcript), "--classifier", "keywords", "-o", str(tmp_path / "out.jsonl"))
    assert not (tmp_path / "out.jsonl").exists()


def test_missing_files(files: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"transcript .*absent\.jsonl not found"):
        run(str(tmp_path / "absent.jsonl"), "-o", str(files["out"]))
    with pytest.raises(FileNotFoundError, match=r"party file .*nope\.yaml not found"):
        run(str(files["transcript"]), "--party", str(tmp_path / "nope.yaml"), "-o", str(files["out"]))


def test_unknown_classifier_is_refused(files: dict[str, Path]) -> None:
    with pytest.raises(ValueError, match="unknown classifier 'magic'"):
        run(str(files["transcript"]), "--classifier", "magic", "-o", str(files["out"]))


def test_output_is_required(files: dict[str, Path]) -> None:
    with pytest.raises(SystemExit):
        run(str(files["transcript"]))


@pytest.mark.skipif(add_classify_command not in cli.COMMANDS, reason="classify is not registered in livereview.cli yet")
def test_command_line_exit_statuses(files: dict[str, Path], tmp_path: Path) -> None:
    ok = subprocess.run(
        [
            sys.executable,
            "-m",
            "livereview",
            "classify",
            str(files["transcript"]),
            "--classifier",
            "keywords",
            "-o",
            str(files["out"]),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert ok.returncode == 0, ok.stderr
    assert len(read(files["out"])) == len(LINES)
    bad = write_lines(tmp_path / "bad.jsonl", [LINES[0], "{"])
    failed = subprocess.run(
        [sys.executable, "-m", "livereview", "classify", str(bad), "-o", str(tmp_path / "x.jsonl")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert failed.returncode != 0
    assert "bad.jsonl line 2: not JSON" in failed.stderr
