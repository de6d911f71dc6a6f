"""A session's knowledge base, offline: mentions (spaCy and known names) -> entities -> quest and hook candidates.

:func:`build_knowledge` runs the whole offline backend over a segment table (the merged
view); :func:`find_candidates` picks the in-character lines that set a task ("bring him
back and we will pay you") or leave a thread open ("my nephew never came back").
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

import pandas as pd

from livereview.core.party import Party
from livereview.core.segments import OOC
from livereview.stages.classify.labels import UNNAMED_TAGS
from livereview.stages.knowledge.aliases import Encoder, build_entities
from livereview.stages.knowledge.extract import extract_mentions
from livereview.stages.knowledge.schema import CANDIDATE_COLUMNS, HOOK, QUEST, Knowledge

#: Character tags that name no NPC.
_NOT_NPC_TAGS = frozenset(tag.casefold() for tag in UNNAMED_TAGS)

_QUEST = re.compile(
    r"\b(?:(?:find|rescue|save|bring|retrieve|recover|deliver|escort|slay|kill|hunt|stop|protect|clear|investigate)"
    r"\b.{0,80}\b(?:reward|pay|paid|gold|coins?|platinum)\b"
    r"|(?:we|i)\s+(?:need|want|beg|ask)\s+(?:you|your\s+help)\s+to\b"
    r"|will\s+you\s+(?:help|find|bring|save|rescue)\b"
    r"|there(?:'s| is)\s+a\s+(?:reward|bounty)\b)",
    re.IGNORECASE,
)
_HOOK = re.compile(
    r"\b(?:never\s+came\s+back|never\s+returned|went\s+missing|has\s+gone\s+missing|disappeared|vanished"
    r"|nobody\s+goes|no\s+one\s+goes|rumou?rs?\s+(?:say|of|that)|they\s+say\s+that|legend\s+(?:says|has\s+it)"
    r"|haunted|cursed|strange\s+lights|something\s+(?:is|was)\s+wrong)\b",
    re.IGNORECASE,
)


def build_knowledge(
    frame: pd.DataFrame,
    *,
    party: Party | None = None,
    npc_names: Iterable[str] = (),
    speaker_names: Mapping[str, str] | None = None,
    encoder: Encoder | None = None,
    cache: dict[str, list[list[Any]]] | None = None,
    include_ooc: bool = False,
) -> Knowledge:
    """Entities with every mention, and quest/hook candidates, of a segment table.

    Parameters
    ----------
    frame : pandas.DataFrame
        Segments with the :data:`~livereview.stages.knowledge.extract.KNOWLEDGE_INPUT_COLUMNS`
        (the merged view: corrected text, speakers and character tags count).
    party : Party, optional
        The party: its characters are ``PC`` entities, its people are never entities.
    npc_names : iterable of str
        NPC names learned elsewhere (operators' corrections); the NPC character tags of
        ``frame`` are added.
    speaker_names : mapping, optional
        Speaker id -> player.
    encoder : callable, optional
        Sentence encoder for alias merging and typing (MiniLM by default).
    cache : dict, optional
        spaCy parses by text, reused and updated (a rebuild parses only changed lines).
    include_ooc : bool
        Keep entities named only out of character.
    """
    names = set(npc_names) | npc_tags(frame, party)
    raw = extract_mentions(frame, party=party, npc_names=names, speaker_names=speaker_names, cache=cache)
    ids = frame["segment_id"] if "segment_id" in frame.columns else frame.index.to_series()
    texts = {str(i): t for i, t in zip(ids, frame["text"], strict=True) if isinstance(t, str)}
    entities, mentions = build_entities(raw, party=party, encoder=encoder, texts=texts, include_ooc=include_ooc)
    candidates = find_candidates(frame, mentions)
    return Knowledge(entities, mentions, candidates, {"backend": "offline"})


def npc_tags(frame: pd.DataFrame, party: Party | None) -> set[str]:
    """Character tags of ``frame`` that name an NPC (not a party character, not DM or NPC)."""
    party_names = {n.casefold() for n in party.names()} if party else set()
    tags = frame["character_tag"].dropna().astype(str).str.strip()
    return {t for t in tags.unique() if t.casefold() not in _NOT_NPC_TAGS and t.casefold() not in party_names}


def find_candidates(frame: pd.DataFrame, mentions: pd.DataFrame) -> pd.DataFrame:
    """In-character lines that set a quest or open a plot hook, with the entities they name."""
    ids = frame["segment_id"] if "segment_id" in frame.columns else frame.index.to_series()
    named = mentions.groupby("segment_id")["entity_id"].agg(lambda e: tuple(dict.fromkeys(e)))
    rows = []
    for segment_id, text, label, start, speaker in zip(
        ids, frame["text"], frame["ic_ooc"], frame["start"], frame["speaker_id"], strict=True
    ):
        if not isinstance(text, str) or label == OOC:
            continue
        kind = QUEST if _QUEST.search(text) else HOOK if _HOOK.search(text) else None
        if kind is None:
            continue
        rows.append(
            {
                "candidate_id": f"{kind.lower()}-{len(rows) + 1:03d}",
                "kind": kind,
                "text": " ".join(text.split()),
                "segment_ids": (str(segment_id),),
                "time": float(start),
                "speaker": speaker if isinstance(speaker, str) else None,
                "entities": named.get(str(segment_id), ()),
            }
        )
    return pd.DataFrame(rows, columns=list(CANDIDATE_COLUMNS))
