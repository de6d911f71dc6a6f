"""The party: who plays which character, who runs the game, and the NPCs it voices.

A party file is YAML::

    party: The Lantern Company
    game_master: Dana
    characters:
      - name: Mira
        player: Alex
        aliases: [Mi]
    npcs:
      - name: Brom
        aliases: [the innkeeper]

``npcs`` is optional: the non-player characters the game master voices. The
classifier uses the file to tag a player's in-character lines with that player's
character and to notice when a line names a character. Speaker mapping (diarized
``speaker_id`` to player) lives with the recorded session, not here.

Every error for a broken file names the file, the line and the entry, e.g.
``party.yaml line 7: npcs[1]: unknown key(s) 'voice'; allowed keys are name, aliases``.

Usage
-----
>>> party = Party.from_dict({"game_master": "Dana",
...                          "characters": [{"name": "Mira", "player": "Alex"}],
...                          "npcs": [{"name": "Brom", "aliases": ["the innkeeper"]}]})
>>> party.character_of("alex").name
'Mira'
>>> party.is_game_master("Dana")
True
>>> party.npc_names()
('Brom', 'the innkeeper')
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml

Pathlike = str | Path
KeyPath = tuple[Any, ...]

_PARTY_KEYS = ("party", "game_master", "characters", "npcs")
_CHARACTER_KEYS = ("name", "player", "aliases")
_NPC_KEYS = ("name", "aliases")
_EXAMPLE = "characters:\n  - name: Mira\n    player: Alex\n    aliases: [Mi]"
_NPC_EXAMPLE = "npcs:\n  - name: Brom\n    aliases: [the innkeeper]"


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
class Npc:
    """A non-player character the game master voices.

    Parameters
    ----------
    name : str
        The NPC's name, as it is said at the table.
    aliases : tuple of str
        Other names the table uses for the NPC (titles, epithets: "the innkeeper").
    """

    name: str
    aliases: tuple[str, ...] = ()

    @property
    def names(self) -> tuple[str, ...]:
        """The name followed by the aliases."""
        return (self.name, *self.aliases)


@dataclass(frozen=True)
class Party:
    """The characters of a campaign, their players, the game master and the known NPCs.

    Parameters
    ----------
    game_master : str
        The person running the game.
    characters : tuple of Character
        The player characters, at most one per player.
    name : str
        The party's name (may be empty).
    npcs : tuple of Npc
        The known non-player characters (may be empty).

    Names are compared case-insensitively, with runs of spaces folded; every name and
    alias, of player characters and NPCs alike, belongs to one character only.
    """

    game_master: str
    characters: tuple[Character, ...] = ()
    name: str = ""
    npcs: tuple[Npc, ...] = ()

    def __post_init__(self) -> None:
        _check_party(self.game_master, self.characters, self.npcs, where=_Where("party"))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str = "party") -> Party:
        """Build a party from the parsed YAML mapping.

        Parameters
        ----------
        data : mapping
            With ``game_master``, ``characters`` (a list of mappings with ``name``,
            ``player`` and optional ``aliases``), optional ``npcs`` (a list of mappings
            with ``name`` and optional ``aliases``) and optional ``party`` (the name).
        source : str
            Where the data came from (a file name), quoted in error messages.

        Raises
        ------
        ValueError
            On unknown keys, missing or empty values, duplicate names or aliases,
            or a player with two characters. :func:`load_party` adds the line.
        """
        return _party_from_dict(cls, data, _Where(source))

    def to_dict(self) -> dict[str, Any]:
        """The YAML-ready mapping :meth:`from_dict` reads."""
        return {
            "party": self.name,
            "game_master": self.game_master,
            "characters": [{"name": c.name, "player": c.player, "aliases": list(c.aliases)} for c in self.characters],
            "npcs": [{"name": npc.name, "aliases": list(npc.aliases)} for npc in self.npcs],
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
        """Every player character name and alias, in file order."""
        return tuple(name for character in self.characters for name in character.names)

    def npc_names(self) -> tuple[str, ...]:
        """Every NPC name and alias, in file order."""
        return tuple(name for npc in self.npcs for name in npc.names)

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
        the message names the file, the line and the entry.
    """
    path = Path(path)
    if not path.is_file():
        msg = f"party file {path} not found; write one like:\ngame_master: Dana\n{_EXAMPLE}"
        raise FileNotFoundError(msg)
    text = path.read_text(encoding="utf-8")
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise ValueError(_yaml_error_message(path, error)) from error
    return _party_from_dict(Party, data if data is not None else {}, _Where(str(path), node=node))


@dataclass(frozen=True)
class _Where:
    """Where a value sits, for error messages: the source, the entry's key path and the YAML nodes.

    ``node`` is the composed document when the data came from a file (so messages can give
    the line), ``None`` otherwise.
    """

    source: str
    path: KeyPath = ()
    node: yaml.Node | None = None

    def at(self, *steps: Any) -> _Where:
        """The place of an entry below this one (a key, a list index)."""
        return replace(self, path=(*self.path, *steps))

    def __call__(self, *keys: Any, name: str = "") -> str:
        """The message prefix: source, line of ``keys`` within the entry (or of the entry), entry, name."""
        line = _line_of(self.node, (*self.path, *keys))
        parts = [self.source if line is None else f"{self.source} line {line}"]
        if self.path:
            entry = "".join(f"[{step}]" if isinstance(step, int) else f".{step}" for step in self.path).lstrip(".")
            parts.append(f"{entry} ({name})" if name else entry)
        return ": ".join(parts)


def _line_of(node: yaml.Node | None, path: KeyPath) -> int | None:
    """The 1-based line of the key or list entry at ``path`` in a composed YAML document.

    Follows the path as far as the document has it and gives the line of the deepest step
    found (the key itself for a mapping, the entry for a list); ``None`` without a document
    or when not even the first step is there.
    """
    line = None
    for step in path:
        if isinstance(node, yaml.MappingNode):
            pair = next(((key, value) for key, value in node.value if _is_key(key, step)), None)
            if pair is None:
                break
            key_node, node = pair
            line = key_node.start_mark.line + 1
        elif isinstance(node, yaml.SequenceNode) and type(step) is int and 0 <= step < len(node.value):
            node = node.value[step]
            line = node.start_mark.line + 1
        else:
            break
    return line


def _is_key(node: yaml.Node, key: Any) -> bool:
    """Whether the mapping key ``node`` loads as ``key`` (``yes`` is ``True``, ``2`` is ``2``)."""
    if not isinstance(node, yaml.ScalarNode):
        return False
    try:
        value = yaml.constructor.SafeConstructor().construct_object(node)
    except (yaml.YAMLError, ValueError):
        return node.value == key
    return type(value) is type(key) and value == key


def _yaml_error_message(path: Path, error: yaml.YAMLError) -> str:
    """``party file PATH is not valid YAML: line N, column C: problem (context)``."""
    if not isinstance(error, yaml.MarkedYAMLError) or error.problem_mark is None:
        return f"party file {path} is not valid YAML: {error}"
    mark = error.problem_mark
    message = f"party file {path} is not valid YAML: line {mark.line + 1}, column {mark.column + 1}: "
    message += error.problem or "syntax error"
    if error.context:
        opened = error.context_mark
        since = f" from line {opened.line + 1}" if opened is not None and opened.line != mark.line else ""
        message += f" ({error.context}{since})"
    return message


def _party_from_dict(cls: type[Party], data: Any, where: _Where) -> Party:
    source = where()
    if not isinstance(data, Mapping):
        msg = f"{source}: a party must be a mapping with 'game_master' and 'characters', got {type(data).__name__}"
        raise ValueError(msg)
    _reject_unknown(data, _PARTY_KEYS, where=where)
    game_master = data.get("game_master")
    if not isinstance(game_master, str) or not game_master.strip():
        msg = f"{where('game_master')}: 'game_master' is missing or empty; add e.g. 'game_master: Dana'"
        raise ValueError(msg)
    characters = tuple(
        _character_from_dict(entry, where=where.at("characters", index))
        for index, entry in enumerate(_entries(data, "characters", _EXAMPLE, where=where))
    )
    npcs = tuple(
        _npc_from_dict(entry, where=where.at("npcs", index))
        for index, entry in enumerate(_entries(data, "npcs", _NPC_EXAMPLE, where=where))
    )
    party_name = data.get("party") or ""
    if not isinstance(party_name, str):
        msg = f"{where('party')}: 'party' must be a string (the party's name), got {party_name!r}"
        raise ValueError(msg)
    _check_party(game_master, characters, npcs, where=where)
    return cls(game_master.strip(), characters, party_name.strip(), npcs)


def _entries(data: Mapping[str, Any], key: str, example: str, *, where: _Where) -> list[Any]:
    """The list under ``key`` (empty when absent or empty)."""
    entries = data.get(key) or []
    if not isinstance(entries, list):
        msg = f"{where(key)}: '{key}' must be a list, got {type(entries).__name__}; e.g.\n{example}"
        raise ValueError(msg)
    return entries


def _reject_unknown(data: Mapping[Any, Any], allowed: tuple[str, ...], *, where: _Where) -> None:
    unknown = [key for key in data if key not in allowed]
    if unknown:
        names = ", ".join(sorted(map(repr, map(str, unknown))))
        msg = f"{where(unknown[0])}: unknown key(s) {names}; allowed keys are {', '.join(allowed)}"
        raise ValueError(msg)


def _aliases(entry: Mapping[str, Any], name: str, *, where: _Where) -> tuple[str, ...]:
    """The entry's ``aliases``: a list of names, or one name as a string."""
    aliases = entry.get("aliases") or []
    if isinstance(aliases, str):
        aliases = [aliases]
    if not isinstance(aliases, list) or not all(isinstance(a, str) and a.strip() for a in aliases):
        msg = f"{where('aliases', name=name)}: 'aliases' must be a list of names, got {aliases!r}"
        raise ValueError(msg)
    return tuple(a.strip() for a in aliases)


def _character_from_dict(entry: Any, *, where: _Where) -> Character:
    if not isinstance(entry, Mapping):
        msg = f"{where()}: a character must be a mapping with 'name' and 'player', got {entry!r}"
        raise ValueError(msg)
    _reject_unknown(entry, _CHARACTER_KEYS, where=where)
    name, player = entry.get("name"), entry.get("player")
    if not isinstance(name, str) or not name.strip():
        msg = f"{where('name')}: the character has no 'name'; every character needs a name and a player"
        raise ValueError(msg)
    if not isinstance(player, str) or not player.strip():
        msg = f"{where('player', name=name)}: the character has no 'player'; add e.g. 'player: Alex'"
        raise ValueError(msg)
    return Character(name.strip(), player.strip(), _aliases(entry, name, where=where))


def _npc_from_dict(entry: Any, *, where: _Where) -> Npc:
    if not isinstance(entry, Mapping):
        msg = f"{where()}: an NPC must be a mapping with a 'name' and optional 'aliases', got {entry!r}"
        msg += f"; e.g.\n{_NPC_EXAMPLE}"
        raise ValueError(msg)
    _reject_unknown(entry, _NPC_KEYS, where=where)
    name = entry.get("name")
    if not isinstance(name, str) or not name.strip():
        msg = f"{where('name')}: the NPC has no 'name'; add e.g. 'name: Brom'"
        raise ValueError(msg)
    return Npc(name.strip(), _aliases(entry, name, where=where))


def _check_party(game_master: str, characters: tuple[Character, ...], npcs: tuple[Npc, ...], *, where: _Where) -> None:
    """Enforce: a game master, unique names and aliases, one character per player."""
    if not game_master.strip():
        msg = f"{where('game_master')}: 'game_master' is missing or empty; add e.g. 'game_master: Dana'"
        raise ValueError(msg)
    name_owner: dict[str, str] = {}
    player_character: dict[str, str] = {}
    entries = [("characters", index, c, c.name) for index, c in enumerate(characters)]
    entries += [("npcs", index, npc, f"NPC {npc.name}") for index, npc in enumerate(npcs)]
    for group, index, character, owner_label in entries:
        entry = where.at(group, index)
        for position, name in enumerate(character.names):
            owner = name_owner.get(_key(name))
            if owner is not None:
                keys = ("name",) if position == 0 else ("aliases", position - 1)
                msg = (
                    f"{entry(*keys, name=character.name)}: the name or alias {name!r} is already used by {owner}; "
                    "names and aliases must be unique"
                )
                raise ValueError(msg)
            name_owner[_key(name)] = owner_label
        if isinstance(character, Character):
            other = player_character.get(_key(character.player))
            if other is not None:
                msg = (
                    f"{entry('player', name=character.name)}: player {character.player!r} already plays {other}; "
                    "a player has one character"
                )
                raise ValueError(msg)
            player_character[_key(character.player)] = character.name
