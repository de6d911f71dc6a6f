"""The party: who plays which character, and who runs the game.

A party file is YAML::

    party: The Lantern Company
    game_master: Dana
    characters:
      - name: Mira
        player: Alex
        aliases: [Mi]

The classifier uses it to tag a player's in-character lines with that player's
character and to notice when a line names a character. Speaker mapping (diarized
``speaker_id`` to player) lives with the recorded session, not here.

Usage
-----
>>> party = Party.from_dict({"game_master": "Dana",
...                          "characters": [{"name": "Mira", "player": "Alex"}]})
>>> party.character_of("alex").name
'Mira'
>>> party.is_game_master("Dana")
True
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

Pathlike = str | Path

_PARTY_KEYS = ("party", "game_master", "characters")
_CHARACTER_KEYS = ("name", "player", "aliases")
_EXAMPLE = "characters:\n  - name: Mira\n    player: Alex\n    aliases: [Mi]"


def _key(name: str) -> str:
    """Case- and space-insensitive form used to compare names."""
    return " ".join(name.split()).casefold()


@dataclass(frozen=True)
class Character:
    """A player character.

    Parameters
    ----------
    name : str
        The character's name, as it is said at the table.
    player : str
        The person who plays it.
    aliases : tuple of str
        Other names the table uses for the character (nicknames, short forms).
    """

    name: str
    player: str
    aliases: tuple[str, ...] = ()

    @property
    def names(self) -> tuple[str, ...]:
        """The name followed by the aliases."""
        return (self.name, *self.aliases)


@dataclass(frozen=True)
class Party:
    """The characters of a campaign, their players and the game master.

    Parameters
    ----------
    game_master : str
        The person running the game.
    characters : tuple of Character
        The player characters, at most one per player.
    name : str
        The party's name (may be empty).

    Names are compared case-insensitively, with runs of spaces folded.
    """

    game_master: str
    characters: tuple[Character, ...] = ()
    name: str = ""

    def __post_init__(self) -> None:
        _check_party(self.game_master, self.characters, source="party")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str = "party") -> Party:
        """Build a party from the parsed YAML mapping.

        Parameters
        ----------
        data : mapping
            With ``game_master``, ``characters`` (a list of mappings with ``name``,
            ``player`` and optional ``aliases``) and optional ``party`` (the name).
        source : str
            Where the data came from (a file name), quoted in error messages.

        Raises
        ------
        ValueError
            On unknown keys, missing or empty values, duplicate names or aliases,
            or a player with two characters.
        """
        if not isinstance(data, Mapping):
            msg = f"{source}: a party must be a mapping with 'game_master' and 'characters', got {type(data).__name__}"
            raise ValueError(msg)
        _reject_unknown(data, _PARTY_KEYS, where=source)
        game_master = data.get("game_master")
        if not isinstance(game_master, str) or not game_master.strip():
            msg = f"{source}: 'game_master' is missing or empty; add e.g. 'game_master: Dana'"
            raise ValueError(msg)
        raw_characters = data.get("characters") or []
        if not isinstance(raw_characters, list):
            kind = type(raw_characters).__name__
            msg = f"{source}: 'characters' must be a list, got {kind}; e.g.\n{_EXAMPLE}"
            raise ValueError(msg)
        characters = tuple(
            _character_from_dict(entry, where=f"{source}: characters[{index}]")
            for index, entry in enumerate(raw_characters)
        )
        party_name = data.get("party") or ""
        if not isinstance(party_name, str):
            msg = f"{source}: 'party' must be a string (the party's name), got {party_name!r}"
            raise ValueError(msg)
        _check_party(game_master, characters, source=source)
        return cls(game_master.strip(), characters, party_name.strip())

    def to_dict(self) -> dict[str, Any]:
        """The YAML-ready mapping :meth:`from_dict` reads."""
        return {
            "party": self.name,
            "game_master": self.game_master,
            "characters": [{"name": c.name, "player": c.player, "aliases": list(c.aliases)} for c in self.characters],
        }

    def character_of(self, player: str | None) -> Character | None:
        """The character played by ``player``, or ``None`` (game master, unknown, missing)."""
        if not isinstance(player, str):
            return None
        wanted = _key(player)
        return next((c for c in self.characters if _key(c.player) == wanted), None)

    def is_game_master(self, player: str | None) -> bool:
        """Whether ``player`` is the game master."""
        return isinstance(player, str) and _key(player) == _key(self.game_master)

    def names(self) -> tuple[str, ...]:
        """Every character name and alias, in file order."""
        return tuple(name for character in self.characters for name in character.names)

    def people(self) -> tuple[str, ...]:
        """The game master and every player."""
        return (self.game_master, *(c.player for c in self.characters))

    def table_size(self) -> int:
        """How many people sit at the table: the game master and the players, each once."""
        return len({_key(person) for person in self.people()})


def load_party(path: Pathlike) -> Party:
    """Read a party YAML file.

    Parameters
    ----------
    path : str or Path
        The party file.

    Returns
    -------
    Party

    Raises
    ------
    FileNotFoundError
        When the file does not exist.
    ValueError
        When the YAML does not parse or the party breaks a rule (see :meth:`Party.from_dict`);
        the message names the file and the entry.
    """
    path = Path(path)
    if not path.is_file():
        msg = f"party file {path} not found; write one like:\ngame_master: Dana\n{_EXAMPLE}"
        raise FileNotFoundError(msg)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        msg = f"party file {path} is not valid YAML: {error}"
        raise ValueError(msg) from error
    return Party.from_dict(data if data is not None else {}, source=str(path))


def _reject_unknown(data: Mapping[str, Any], allowed: tuple[str, ...], *, where: str) -> None:
    unknown = sorted(str(key) for key in data if key not in allowed)
    if unknown:
        msg = f"{where}: unknown key(s) {', '.join(map(repr, unknown))}; allowed keys are {', '.join(allowed)}"
        raise ValueError(msg)


def _character_from_dict(entry: Any, *, where: str) -> Character:
    if not isinstance(entry, Mapping):
        msg = f"{where}: a character must be a mapping with 'name' and 'player', got {entry!r}"
        raise ValueError(msg)
    _reject_unknown(entry, _CHARACTER_KEYS, where=where)
    name, player = entry.get("name"), entry.get("player")
    if not isinstance(name, str) or not name.strip():
        msg = f"{where}: the character has no 'name'; every character needs a name and a player"
        raise ValueError(msg)
    if not isinstance(player, str) or not player.strip():
        msg = f"{where} ({name}): the character has no 'player'; add e.g. 'player: Alex'"
        raise ValueError(msg)
    aliases = entry.get("aliases") or []
    if isinstance(aliases, str):
        aliases = [aliases]
    if not isinstance(aliases, list) or not all(isinstance(a, str) and a.strip() for a in aliases):
        msg = f"{where} ({name}): 'aliases' must be a list of names, got {aliases!r}"
        raise ValueError(msg)
    return Character(name.strip(), player.strip(), tuple(a.strip() for a in aliases))


def _check_party(game_master: str, characters: tuple[Character, ...], *, source: str) -> None:
    """Enforce: a game master, unique names and aliases, one character per player."""
    if not game_master.strip():
        msg = f"{source}: 'game_master' is missing or empty; add e.g. 'game_master: Dana'"
        raise ValueError(msg)
    name_owner: dict[str, str] = {}
    player_character: dict[str, str] = {}
    for index, character in enumerate(characters):
        where = f"{source}: characters[{index}] ({character.name})"
        for name in character.names:
            owner = name_owner.get(_key(name))
            if owner is not None:
                msg = (
                    f"{where}: the name or alias {name!r} is already used by {owner}; names and aliases must be unique"
                )
                raise ValueError(msg)
            name_owner[_key(name)] = character.name
        other = player_character.get(_key(character.player))
        if other is not None:
            msg = f"{where}: player {character.player!r} already plays {other}; a player has one character"
            raise ValueError(msg)
        player_character[_key(character.player)] = character.name
