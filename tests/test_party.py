"""Party files: loading, lookups and the errors for broken files."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import pytest
import yaml

from livereview.cli.options import speaker_count
from livereview.core.party import Character, Party, load_party
from livereview.demo import demo_party_path
from livereview.review.checks import build_options

GOOD = """\
party: The Lantern Company
game_master: Dana
characters:
  - name: Mira
    player: Alex
    aliases: [Mi]
  - name: Brannoc
    player: Sam
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "party.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_load_party_reads_every_field(tmp_path: Path) -> None:
    party = load_party(write(tmp_path, GOOD))
    assert party == Party(
        "Dana",
        (Character("Mira", "Alex", ("Mi",)), Character("Brannoc", "Sam")),
        "The Lantern Company",
    )
    assert party.names() == ("Mira", "Mi", "Brannoc")
    assert party.people() == ("Dana", "Alex", "Sam")


def test_lookups_ignore_case_and_spacing() -> None:
    party = Party.from_dict(yaml.safe_load(GOOD))
    assert party.character_of("alex").name == "Mira"
    assert party.character_of(" SAM ".strip()).name == "Brannoc"
    assert party.character_of("Dana") is None
    assert party.character_of(None) is None
    assert party.is_game_master("dana")
    assert not party.is_game_master("Alex")
    assert not party.is_game_master(None)


def test_round_trip_through_to_dict() -> None:
    party = Party.from_dict(yaml.safe_load(GOOD))
    assert Party.from_dict(party.to_dict()) == party


def test_party_is_frozen() -> None:
    party = Party.from_dict(yaml.safe_load(GOOD))
    with pytest.raises(AttributeError):
        party.game_master = "Someone"  # type: ignore[misc]


def test_aliases_may_be_a_single_string() -> None:
    character = {"name": "Mira", "player": "Alex", "aliases": "Mi"}
    party = Party.from_dict({"game_master": "Dana", "characters": [character]})
    assert party.characters[0].aliases == ("Mi",)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (GOOD + "  - name: Zed\n    player: Kim\n    class: rogue\n", r"characters\[2\].*unknown key\(s\) 'class'"),
        (GOOD + "campaign: Lost Mines\n", r"unknown key\(s\) 'campaign'; allowed keys are party, game_master"),
        (GOOD + "  - name: Zed\n", r"characters\[2\] \(Zed\): the character has no 'player'"),
        (GOOD + "  - player: Kim\n", r"characters\[2\]: the character has no 'name'"),
        (
            GOOD + "  - name: mira\n    player: Kim\n",
            r"characters\[2\] \(mira\): the name or alias 'mira' is already used",
        ),
        (GOOD + "  - name: Zed\n    player: Kim\n    aliases: [MI]\n", r"alias 'MI' is already used by Mira"),
        (GOOD + "  - name: Zed\n    player: alex\n", r"characters\[2\] \(Zed\): player 'alex' already plays Mira"),
        (GOOD.replace("game_master: Dana\n", ""), r"'game_master' is missing or empty"),
        (GOOD + "  - name: Zed\n    player: Kim\n    aliases: [[x]]\n", r"'aliases' must be a list of names"),
        ("game_master: Dana\ncharacters: Mira\n", r"'characters' must be a list"),
        ("- just\n- a list\n", r"a party must be a mapping"),
    ],
)
def test_broken_party_files_name_the_file_and_entry(tmp_path: Path, text: str, expected: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ValueError, match=expected) as caught:
        load_party(path)
    assert str(path) in str(caught.value)


def test_bad_yaml_names_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "game_master: Dana\ncharacters: [\n  - name: Mira\n")
    with pytest.raises(ValueError, match="is not valid YAML") as caught:
        load_party(path)
    assert str(path) in str(caught.value)


def test_missing_file_says_how_to_write_one(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"party file .*nowhere\.yaml not found; write one like"):
        load_party(tmp_path / "nowhere.yaml")


def test_empty_file_lacks_a_game_master(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="'game_master' is missing"):
        load_party(write(tmp_path, ""))


def test_direct_construction_checks_the_same_rules() -> None:
    with pytest.raises(ValueError, match="already plays Mira"):
        Party("Dana", (Character("Mira", "Alex"), Character("Zed", "Alex")))


def test_the_table_size_counts_the_game_master_and_each_player_once(tmp_path: Path) -> None:
    assert load_party(write(tmp_path, GOOD)).table_size() == 3
    assert load_party(demo_party_path()).table_size() == 4


@pytest.mark.parametrize(
    ("counts", "expected"),
    [
        ({}, (None, 4)),  # the table bounds the count
        ({"num_speakers": "auto"}, (None, None)),  # left open
        ({"num_speakers": 3}, (3, None)),  # a count given wins
        ({"max_speakers": 6}, (None, 6)),  # so does a maximum
        ({"min_speakers": 5}, (None, None)),  # more than the table: not bounded by it
    ],
)
def test_a_party_bounds_the_speaker_count_unless_told_otherwise(
    counts: dict[str, Any], expected: tuple[int | None, int | None]
) -> None:
    options, problems = build_options(party=demo_party_path(), **counts)
    assert problems == [] and options is not None
    assert (options.diarize.num_speakers, options.diarize.max_speakers) == expected


def test_without_a_party_the_count_stays_open() -> None:
    options, _ = build_options()
    assert options is not None and options.diarize.speaker_limit is None


def test_a_speaker_count_that_is_neither_a_number_nor_auto_is_refused() -> None:
    options, problems = build_options(num_speakers="four", party=demo_party_path())
    assert options is None and problems == ["num_speakers must be a whole number or 'auto'; got 'four'"]
    assert speaker_count("auto") == "auto" and speaker_count("3") == 3
    with pytest.raises(argparse.ArgumentTypeError, match="whole number or 'auto'"):
        speaker_count("four")
