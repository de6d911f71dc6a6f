"""The keyword baseline: table-talk words mark OOC, everything else IC."""

from __future__ import annotations

import re

import pandas as pd

from livereview.core.party import Party
from livereview.core.segments import IC, OOC
from livereview.stages.classify.features import game_master_flags
from livereview.stages.classify.tags import character_tags

_TABLE_TALK = re.compile(
    r"\b(?:roll|rolled|dice|d20|initiative|modifier|bonus|pizza|snack|break|phone|rules?|turn|hit points?)\b",
    re.IGNORECASE,
)
_MECHANICS_WORDS = re.compile(r"\b(roll|rolled|dice|d\d+|initiative|modifier|bonus|check|damage)\b", re.I)


def keyword_classifier(segments: pd.DataFrame, party: Party | None = None) -> pd.DataFrame:
    """Baseline: table-talk keywords mark OOC, everything else IC.

    The game master's IC lines are narration, a player's are character speech. The
    confidence is a constant 0.55, so every row is left for the operator to check.
    """
    text = segments["text"].fillna("").astype(str)
    is_ooc = text.str.contains(_TABLE_TALK)
    is_gm = game_master_flags(segments, party) == 1.0
    types = [
        ("MECHANICS" if _MECHANICS_WORDS.search(t) else "TABLE_TALK")
        if ooc
        else ("DM_NARRATION" if gm else "CHARACTER_SPEECH")
        for t, ooc, gm in zip(text, is_ooc, is_gm, strict=True)
    ]
    return pd.DataFrame(
        {
            "ic_ooc": is_ooc.map({True: OOC, False: IC}),
            "ic_ooc_confidence": 0.55,
            "segment_type": types,
            "character_tag": character_tags(segments, types, party),
            "classifier": "keywords-0.2",
        },
        index=segments.index,
    )
