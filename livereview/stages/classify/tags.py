"""Character tags: who a line is spoken as, from the speaker, the segment type and the text.

A player's in-character line gets their character from the party; narration gets
``"DM"``; NPC dialogue gets the NPC's name when a line tells it (a self-introduction,
"the innkeeper says"), else ``"NPC"``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import pandas as pd

from livereview.core.party import Party
from livereview.stages.classify.features import SPEECH_VERBS, column_values, continued_quotations
from livereview.stages.classify.labels import DM_TAG, NPC_TAG, OOC_TYPES

_NAME = r"[A-Z][\w'-]+(?:\s+(?:of\s+the\s+|the\s+|of\s+)?[A-Z][\w'-]+){0,2}"
_SELF_INTRODUCTION = re.compile(
    rf"\b(?i:my name is|my name's|name's|I am|I'm|they call me|call me)\s+({_NAME})"
    rf"|(?:^|[.!?]\s+)({_NAME}),\s+at your service"
)
_ROLE_WORDS = r"(?:(?:old|young|little|big|tall|short|fat|thin|grizzled|tired|nervous|hooded|other)\s+)?"
_PLACE = r"(?:in|at|by|from|with|behind|near|on|of)\s+the\s+[a-z]+"
_ATTRIBUTION = re.compile(
    rf"\b[Tt]he\s+{_ROLE_WORDS}([a-z]+)(?:\s+{_PLACE})?\s+{SPEECH_VERBS}\b"
    rf"|\b{SPEECH_VERBS}\s+the\s+{_ROLE_WORDS}([a-z]+)\b"
    rf"|\b({_NAME})\s+{SPEECH_VERBS}\b"
    rf"|\b{SPEECH_VERBS}\s+({_NAME})\b"
)
_NOT_NAMES = frozenset(
    (
        "i",
        "he",
        "she",
        "it",
        "they",
        "we",
        "you",
        "the",
        "a",
        "an",
        "this",
        "that",
        "there",
        "here",
        "not",
        "just",
        "so",
        "sorry",
        "fine",
        "okay",
        "ok",
        "no",
        "yes",
        "god",
        "well",
        "oh",
        "mister",
        "miss",
        "sir",
        "madam",
        "lord",
        "lady",
        "captain",
    )
)


def npc_name(text: str, party: Party | None = None) -> str | None:
    """The NPC a line names as its speaker, or ``None``.

    Recognises self-introductions ("my name is Tomas", "Captain Dellan, at your service")
    and attributions in narration ("the innkeeper says", "says Mother Sabine").
    Common nouns come back title-cased ("Innkeeper"); party names are never NPCs.
    """
    party_names = {name.casefold() for name in party.names()} if party else set()
    for pattern in (_SELF_INTRODUCTION, _ATTRIBUTION):
        for match in pattern.finditer(text):
            name = next(group for group in match.groups() if group)
            name = " ".join(name.split())
            if name.casefold() in _NOT_NAMES or name.casefold() in party_names:
                continue
            return name if name[0].isupper() else name.title()
    return None


#: Verbs that make the name before them the speaker or actor of a game master's line.
_ACTOR_VERBS = (
    r"(?:says|said|asks|asked|replies|goes|chuckles|laughs|nods|smiles|sighs|continues|responds|adds|exclaims|"
    r"calls|shouts|yells|whispers|mutters|growls|hisses|snaps|answers|turns|looks|steps|leans|grins|glances|"
    r"shakes|points|speaks|interjects|pipes up|cuts in)"
)
_ACTOR = re.compile(rf"\b({_NAME})(?:'s)?\s+(?:\w+ly\s+)?{_ACTOR_VERBS}\b|\b{SPEECH_VERBS},?\s+({_NAME})\b")
_NAMED = re.compile(rf"\b(?:named|called|by the name of)\s+({_NAME})")
_NAME_IS = re.compile(rf"\b({_NAME}) is the name\b|\bthe name(?:'s| is)\s+({_NAME})")
_QUOTE_MARK = re.compile('["\u201c\u201d]')
#: Words that may start a capitalised run without being part of the name after them.
_LEADING_WORDS = frozenset(
    ("and", "but", "then", "so", "as", "now", "when", "while", "meanwhile", "suddenly", "finally")
)
_QUOTED = re.compile(r"\"[^\"]*(?:\"|$)|\u201c[^\u201d]*(?:\u201d|$)")
_LEAVES = re.compile(
    r"\b(?:leaves|walks away|walks off|heads off|departs|exits|disappears|steps out|goes back inside)\b", re.I
)


class NpcTracker:
    """Who the game master is voicing: the NPC named last as a speaker, kept through a conversation.

    A name becomes the current NPC when narration makes it the actor of a line ("Mertin
    says", "Vanessa chuckles"), when a quote introduces its speaker ("my name is Brom",
    "Mertin is the name"), or when a player addresses a known NPC by name ("Thank you,
    Bryce."). It stays current through narration and players' answers until another
    NPC is named or it leaves ("Bryce turns around and leaves"). Known names are the
    party's NPCs, names learnt from such cues and the ``known`` names given (operators'
    corrections).
    """

    def __init__(self, party: Party | None, known: Sequence[str] = ()) -> None:
        self.party_names = {name.casefold() for name in party.names()} if party else set()
        self.known: dict[str, str] = {}
        for name in (*(party.npc_names() if party else ()), *known):
            self.learn(name)
        self.current: str | None = None

    def learn(self, name: str) -> str | None:
        """Remember ``name`` as an NPC (not a party name or a common word); returns it or ``None``."""
        words = name.split()
        while words and words[0].casefold() in _LEADING_WORDS:
            words = words[1:]  # "And Vanessa chuckles": the name is Vanessa
        name = " ".join(words)
        key = name.casefold()
        if not name or key in _NOT_NAMES or key in self.party_names:
            return None
        return self.known.setdefault(key, name)

    def speaker(self, text: str, *, inside: bool = False) -> str | None:
        """The NPC a game master's line names as its speaker or actor.

        Quoted words are the NPC's, the rest narration; a line without quotation marks
        is spoken when it continues a quotation (``inside``), else narration.
        """
        if _QUOTE_MARK.search(text):
            spoken = " ".join(match.group(0) for match in _QUOTED.finditer(text))
            narration = _QUOTED.sub(" ", text)
        else:
            spoken, narration = (text, "") if inside else ("", text)
        for pattern, part in ((_ACTOR, narration), (_NAMED, narration), (_NAME_IS, spoken)):
            for match in pattern.finditer(part):
                name = self.learn(next(group for group in match.groups() if group))
                if name:
                    return name
        named = npc_name(spoken, None) or npc_name(narration, None)
        if named:
            return self.learn(named)
        return next((name for key, name in self.known.items() if _mentions(narration, key)), None)

    def addressed(self, text: str) -> str | None:
        """A known NPC a line speaks to by name ("Thank you, Bryce.", "Mertin, would you ...")."""
        for key, name in self.known.items():
            if re.search(
                rf"(?:^|[,.!?\"]\s*|\b(?:now|hey|oh|thank you|thanks)\s+){re.escape(key)}\s*[,.!?]", text, re.I
            ):
                return name
        return None

    def game_master_line(self, text: str, segment_type: str, *, inside: bool = False) -> str:
        """The tag of a game master's line, after updating the current NPC.

        ``inside``: the line continues a quotation opened before it. NPC dialogue with no
        quotation mark and outside a quotation gets ``"NPC"`` (its type may be wrong there),
        unless it names its speaker.
        """
        quoted = inside or _QUOTE_MARK.search(text) is not None
        named = self.speaker(text, inside=inside)
        if segment_type == "DM_NARRATION":
            self.current = None if _LEAVES.search(text) else named or self.current
            return DM_TAG
        if segment_type == "NPC_DIALOGUE":
            if named:
                self.current = named
            if not quoted:
                return NPC_TAG
            if not named and self.current is not None and self.addressed(text) == self.current:
                return NPC_TAG  # someone else speaks to the current NPC
            return self.current or NPC_TAG
        return ""

    def player_line(self, text: str) -> None:
        """A player's line: addressing a known NPC makes it the one expected to answer."""
        addressed = self.addressed(text)
        if addressed is not None:
            self.current = addressed


def _mentions(text: str, key: str) -> bool:
    return re.search(rf"\b{re.escape(key)}\b", text, re.I) is not None


def character_tags(
    frame: pd.DataFrame,
    segment_types: Sequence[str],
    party: Party | None,
    npc_guesses: Sequence[str | None] | None = None,
) -> list[str]:
    """Derive ``character_tag`` from the speaker, the segment type and the text.

    Rules: mechanics and table talk -> ``""``; narration -> ``"DM"``; NPC dialogue -> the
    NPC being voiced as :class:`NpcTracker` follows it, else ``npc_guesses[i]``, else
    ``"NPC"``; a player's speech and actions -> that player's character from the party
    (``""`` when unknown).

    Parameters
    ----------
    frame : DataFrame
        Rows in time order with ``text`` and, when known, ``player`` and ``is_game_master``.
    segment_types : sequence of str
        The segment type of each row.
    party : Party or None
        Its NPCs are known names from the start.
    npc_guesses : sequence of str or None, optional
        A fallback NPC name per row (from remembered corrections); these names are known too.
    """
    texts = frame["text"].fillna("").astype(str).tolist()
    players = column_values(frame, "player")
    guesses = list(npc_guesses) if npc_guesses is not None else [None] * len(frame)
    tracker = NpcTracker(party, [guess for guess in guesses if guess])
    speakers = [p if p is not None else s for p, s in zip(players, column_values(frame, "speaker_id"), strict=True)]
    if any(_QUOTE_MARK.search(text) for text in texts):
        continued = continued_quotations(texts, speakers)
    else:  # a transcript that marks no quotation (speech recognition): an NPC line is all spoken
        continued = [segment_type == "NPC_DIALOGUE" for segment_type in segment_types]
    tags: list[str] = []
    for text, segment_type, player, guess, inside in zip(
        texts, segment_types, players, guesses, continued, strict=True
    ):
        if segment_type in ("DM_NARRATION", "NPC_DIALOGUE"):
            tag = tracker.game_master_line(text, segment_type, inside=inside)
            tags.append(guess if tag == NPC_TAG and guess else tag)
            continue
        if segment_type in OOC_TYPES:
            tags.append("")
        else:
            character = party.character_of(player) if party else None
            tags.append(character.name if character else "")
        if player is not None and not (party and party.is_game_master(player)):
            tracker.player_line(text)
    return tags
