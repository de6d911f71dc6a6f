"""Party files: loading, lookups and the errors for broken files."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import pytest
import yaml

from livereview.cli.options import speaker_count
from livereview.core.party import Character, Npc, Party, load_party
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

# GOOD, then the NPCs from line 9 on.
WITH_NPCS = (
    GOOD
    + """\
npcs:
  - name: Brom
    aliases: [the innkeeper]
  - name: Old Nan
    aliases: Nan
"""
)


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


def assert_names_the_place(message: str, path: Path, line: int | None) -> None:
    """The message opens with the file and, when given, the line."""
    prefix = f"{path}: " if line is None else f"{path} line {line}: "
    assert message.startswith(prefix), message


# GOOD ends at line 8: an entry appended to its characters starts at line 9.
@pytest.mark.parametrize(
    ("text", "line", "expected"),
    [
        (
            GOOD + "  - name: Zed\n    player: Kim\n    class: rogue\n",
            11,
            r"characters\[2\]: unknown key\(s\) 'class'; allowed keys are name, player, aliases",
        ),
        (GOOD + "campaign: Lost Mines\n", 9, r"unknown key\(s\) 'campaign'; allowed keys are party, game_master"),
        (GOOD + "  - name: Zed\n", 9, r"characters\[2\] \(Zed\): the character has no 'player'"),
        (GOOD + "  - player: Kim\n", 9, r"characters\[2\]: the character has no 'name'"),
        (GOOD + "  - Zed\n", 9, r"characters\[2\]: a character must be a mapping with 'name' and 'player'"),
        (
            GOOD + "  - name: mira\n    player: Kim\n",
            9,
            r"characters\[2\] \(mira\): the name or alias 'mira' is already used",
        ),
        (GOOD + "  - name: Zed\n    player: Kim\n    aliases: [MI]\n", 11, r"alias 'MI' is already used by Mira"),
        (GOOD + "  - name: Zed\n    player: alex\n", 10, r"characters\[2\] \(Zed\): player 'alex' already plays Mira"),
        (GOOD.replace("game_master: Dana\n", ""), None, r"'game_master' is missing or empty"),
        (GOOD.replace("game_master: Dana\n", "game_master: ''\n"), 2, r"'game_master' is missing or empty"),
        (GOOD + "  - name: Zed\n    player: Kim\n    aliases: [[x]]\n", 11, r"'aliases' must be a list of names"),
        ("game_master: Dana\ncharacters: Mira\n", 2, r"'characters' must be a list"),
        ("game_master: Dana\nparty: [The, Company]\n", 2, r"'party' must be a string"),
        ("- just\n- a list\n", None, r"a party must be a mapping"),
    ],
)
def test_broken_party_files_name_the_file_line_and_entry(
    tmp_path: Path, text: str, line: int | None, expected: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ValueError, match=expected) as caught:
        load_party(path)
    assert_names_the_place(str(caught.value), path, line)


def test_npcs_are_read_with_their_aliases(tmp_path: Path) -> None:
    party = load_party(write(tmp_path, WITH_NPCS))
    assert party.npcs == (Npc("Brom", ("the innkeeper",)), Npc("Old Nan", ("Nan",)))
    assert party.npc_names() == ("Brom", "the innkeeper", "Old Nan", "Nan")
    assert party.npcs[0].names == ("Brom", "the innkeeper")
    assert party.names() == ("Mira", "Mi", "Brannoc")  # player characters only
    assert party.people() == ("Dana", "Alex", "Sam")  # NPCs are not at the table
    assert party.table_size() == 3


def test_a_party_without_npcs_has_none(tmp_path: Path) -> None:
    party = load_party(write(tmp_path, GOOD + "npcs:\n"))
    assert party.npcs == () and party.npc_names() == ()
    assert party.to_dict()["npcs"] == []
    assert Party("Dana").npcs == ()


def test_npcs_round_trip_through_to_dict_and_a_file(tmp_path: Path) -> None:
    party = load_party(write(tmp_path, WITH_NPCS))
    data = party.to_dict()
    assert data["npcs"] == [
        {"name": "Brom", "aliases": ["the innkeeper"]},
        {"name": "Old Nan", "aliases": ["Nan"]},
    ]
    assert Party.from_dict(data) == party
    assert load_party(write(tmp_path, yaml.safe_dump(data, sort_keys=False))) == party


# WITH_NPCS ends at line 13: an NPC appended to it starts at line 14.
@pytest.mark.parametrize(
    ("text", "line", "expected"),
    [
        (
            WITH_NPCS + "  - name: Vex\n    voice: gravel\n",
            15,
            r"npcs\[2\]: unknown key\(s\) 'voice'; allowed keys are name, aliases$",
        ),
        (
            GOOD + "npcs: [{name: Brom, voice: gravel, mood: grim}]\n",
            9,
            r"npcs\[0\]: unknown key\(s\) 'mood', 'voice'; allowed keys are name, aliases$",
        ),
        (WITH_NPCS + "  - aliases: [Vexy]\n", 14, r"npcs\[2\]: the NPC has no 'name'; add e.g. 'name: Brom'"),
        (WITH_NPCS + "  - name: ' '\n", 14, r"npcs\[2\]: the NPC has no 'name'"),
        (WITH_NPCS + "  - Vex\n", 14, r"npcs\[2\]: an NPC must be a mapping with a 'name'"),
        (
            WITH_NPCS + "  - name: Vex\n    aliases: {witch: true}\n",
            15,
            r"npcs\[2\] \(Vex\): 'aliases' must be a list of names, got \{'witch': True\}",
        ),
        (WITH_NPCS + "  - name: Vex\n    aliases: [3]\n", 15, r"npcs\[2\] \(Vex\): 'aliases' must be a list of names"),
        (GOOD + "npcs: Brom\n", 9, r"'npcs' must be a list, got str; e.g.\nnpcs:\n  - name: Brom"),
        (
            WITH_NPCS + "  - name: Vex\n    aliases:\n      - the witch\n      - mi\n",
            17,
            r"npcs\[2\] \(Vex\): the name or alias 'mi' is already used by Mira; names and aliases must be unique",
        ),
        (
            GOOD + "npcs:\n  - name: brannoc\n",
            10,
            r"npcs\[0\] \(brannoc\): the name or alias 'brannoc' is already used by Brannoc",
        ),
        (
            WITH_NPCS + "  - name: Vex\n    aliases: NAN\n",
            15,
            r"the name or alias 'NAN' is already used by NPC Old Nan",
        ),
        (
            WITH_NPCS + "  - name: old  nan\n",
            14,
            r"npcs\[2\] \(old  nan\): the name or alias 'old  nan' is already used by NPC Old Nan",
        ),
    ],
)
def test_broken_npcs_name_the_file_line_and_key(tmp_path: Path, text: str, line: int, expected: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ValueError, match=expected) as caught:
        load_party(path)
    assert_names_the_place(str(caught.value), path, line)


def test_the_line_is_found_for_keys_yaml_does_not_read_as_strings(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD + "yes: 1\n2: two\n")
    with pytest.raises(ValueError, match=r"unknown key\(s\) '2', 'True'") as caught:
        load_party(path)
    assert_names_the_place(str(caught.value), path, 9)  # the first unknown key in the file


def test_npcs_may_come_before_the_characters_and_still_clash(tmp_path: Path) -> None:
    text = """\
game_master: Dana
npcs:
  - name: Brom
    aliases: mi
characters:
  - name: Mira
    player: Alex
    aliases: [Mi]
"""
    path = write(tmp_path, text)
    with pytest.raises(
        ValueError, match=r"npcs\[0\] \(Brom\): the name or alias 'mi' is already used by Mira"
    ) as caught:
        load_party(path)
    assert_names_the_place(str(caught.value), path, 4)


def test_from_dict_without_a_file_names_the_source_and_no_line() -> None:
    data = {"game_master": "Dana", "npcs": [{"name": "Brom", "voice": "gravel"}]}
    with pytest.raises(
        ValueError, match=r"^table: npcs\[0\]: unknown key\(s\) 'voice'; allowed keys are name, aliases$"
    ):
        Party.from_dict(data, source="table")
    with pytest.raises(ValueError, match=r"^party: 'npcs' must be a list, got str"):
        Party.from_dict({"game_master": "Dana", "npcs": "Brom"})
    with pytest.raises(ValueError, match=r"^party: characters\[0\] \(Mira\): the character has no 'player'"):
        Party.from_dict({"game_master": "Dana", "characters": [{"name": "Mira"}]})


def test_bad_yaml_names_the_file_and_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, "game_master: Dana\ncharacters: [\n  - name: Mira\n")
    with pytest.raises(ValueError, match=r"is not valid YAML: line 3, column 3: ") as caught:
        load_party(path)
    assert str(caught.value).startswith(f"party file {path} is not valid YAML")


def test_an_unclosed_bracket_names_where_it_opened(tmp_path: Path) -> None:
    path = write(tmp_path, "game_master: Dana\ncharacters: [Mira\n\n")
    with pytest.raises(ValueError, match=r"line 4, column 1: .*\(while parsing a flow sequence from line 2\)"):
        load_party(path)


def test_missing_file_says_how_to_write_one(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"party file .*nowhere\.yaml not found; write one like"):
        load_party(tmp_path / "nowhere.yaml")


def test_empty_file_lacks_a_game_master(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="'game_master' is missing"):
        load_party(write(tmp_path, ""))


def test_direct_construction_checks_the_same_rules() -> None:
    with pytest.raises(ValueError, match="already plays Mira"):
        Party("Dana", (Character("Mira", "Alex"), Character("Zed", "Alex")))
    with pytest.raises(
        ValueError, match=r"^party: npcs\[0\] \(Mirabel\): the name or alias 'MI' is already used by Mira"
    ):
        Party("Dana", (Character("Mira", "Alex", ("Mi",)),), npcs=(Npc("Mirabel", ("MI",)),))


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
