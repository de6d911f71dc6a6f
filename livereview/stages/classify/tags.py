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
from livereview.stages.classify.features import SPEECH_VERBS, column_values
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


def character_tags(
    frame: pd.DataFrame,
    segment_types: Sequence[str],
    party: Party | None,
    npc_guesses: Sequence[str | None] | None = None,
) -> list[str]:
    """Derive ``character_tag`` from the speaker, the segment type and the text.

    Rules: mechanics and table talk -> ``""``; narration -> ``"DM"``; NPC dialogue ->
    the NPC's name when the line or the line just before it tells it, else the NPC
    named last if no narration came since (players answering an NPC do not end the
    conversation), else ``npc_guesses[i]``, else ``"NPC"``; a player's speech and
    actions -> that player's character from the party (``""`` when unknown).

    Parameters
    ----------
    frame : DataFrame
        Rows in time order with ``text`` and, when known, ``player`` and ``is_game_master``.
    segment_types : sequence of str
        The segment type of each row.
    party : Party or None
    npc_guesses : sequence of str or None, optional
        A fallback NPC name per row (from remembered corrections).
    """
    texts = frame["text"].fillna("").astype(str).tolist()
    players = column_values(frame, "player")
    tags: list[str] = []
    last_npc: str | None = None
    for index, segment_type in enumerate(segment_types):
        if segment_type == "NPC_DIALOGUE":
            named = npc_name(texts[index], party) or (npc_name(texts[index - 1], party) if index else None)
            guess = npc_guesses[index] if npc_guesses is not None else None
            tag = named or last_npc or guess or NPC_TAG
            last_npc = tag if tag != NPC_TAG else None
        elif segment_type in OOC_TYPES:
            tag = ""
        elif segment_type == "DM_NARRATION":
            tag = DM_TAG
            last_npc = None
        else:
            character = party.character_of(players[index]) if party else None
            tag = character.name if character else ""
        tags.append(tag)
    return tags
