"""What every classifier returns, and the label sets that keep its answers consistent.

A classifier is any callable ``classifier(frame, party) -> DataFrame``: it takes the
segment rows to classify (ordered by time, columns ``segment_id``, ``start``, ``end``,
``text``, ``speaker_id``, ``player``, ``is_game_master``; earlier rows may be included
as context, flagged by ``context == True``) and returns, indexed like its input, the
columns in :data:`CLASSIFICATION_COLUMNS`. ``party`` is a
:class:`~livereview.core.party.Party` or ``None``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandas as pd

CLASSIFICATION_COLUMNS = ("ic_ooc", "ic_ooc_confidence", "segment_type", "character_tag", "classifier")
#: Segments whose IC/OOC confidence is below this get status "needs attention".
NEEDS_ATTENTION_THRESHOLD = 0.6

Classifier = Callable[[pd.DataFrame, Any], pd.DataFrame]

#: Character tag of narration, and of NPC dialogue whose NPC is not named.
DM_TAG = "DM"
NPC_TAG = "NPC"
#: Character tags that name no character: table talk, narration, an unnamed NPC.
UNNAMED_TAGS = frozenset({"", DM_TAG, NPC_TAG})
#: Segment types allowed with an IC or an OOC label, for the game master and for a player.
IC_TYPES = ("DM_NARRATION", "NPC_DIALOGUE", "CHARACTER_SPEECH", "CHARACTER_ACTION")
OOC_TYPES = ("MECHANICS", "TABLE_TALK")
GM_TYPES = ("DM_NARRATION", "NPC_DIALOGUE", *OOC_TYPES)
PLAYER_TYPES = ("CHARACTER_SPEECH", "CHARACTER_ACTION", *OOC_TYPES)
