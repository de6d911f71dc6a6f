"""IC/OOC classification of segments.

A classifier is any callable ``classifier(segments, party) -> DataFrame``: it takes
the segment rows to classify (ordered by time, columns ``segment_id``, ``start``,
``end``, ``text``, ``speaker_id``, ``player``, ``is_game_master``; earlier rows may be
included as context, flagged by ``context == True``) and returns, indexed like its input,
the columns in :data:`CLASSIFICATION_COLUMNS`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pandas as pd

from livereview.segments import IC, OOC

CLASSIFICATION_COLUMNS = ("ic_ooc", "ic_ooc_confidence", "segment_type", "character_tag", "classifier")
#: Segments whose IC/OOC confidence is below this get status "needs attention".
NEEDS_ATTENTION_THRESHOLD = 0.6

Classifier = Callable[[pd.DataFrame, Any], pd.DataFrame]

_TABLE_TALK = re.compile(
    r"\b(roll|rolled|dice|d20|initiative|modifier|bonus|pizza|snack|break|phone|rules?|turn|hit points?)\b",
    re.IGNORECASE,
)


def keyword_classifier(segments: pd.DataFrame, party: Any = None) -> pd.DataFrame:
    """Baseline: table-talk keywords mark OOC, everything else IC."""
    is_ooc = segments["text"].fillna("").str.contains(_TABLE_TALK)
    return pd.DataFrame(
        {
            "ic_ooc": is_ooc.map({True: OOC, False: IC}),
            "ic_ooc_confidence": 0.55,
            "segment_type": is_ooc.map({True: "TABLE_TALK", False: "CHARACTER_SPEECH"}),
            "character_tag": "",
            "classifier": "keywords-0.1",
        },
        index=segments.index,
    )


def resolve_classifier(spec: str | Classifier | None) -> Classifier:
    """Turn a classifier name, callable or ``None`` (the default) into a classifier."""
    if callable(spec):
        return spec
    if spec in (None, "keywords"):
        return keyword_classifier
    msg = f"unknown classifier {spec!r}; pass 'keywords' or a callable"
    raise ValueError(msg)
