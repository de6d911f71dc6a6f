"""What a knowledge base holds: entities, every mention of them, and quest and hook candidates.

Both backends (spaCy offline, an LLM) return a :class:`Knowledge` of these three tables,
with the columns below, and a campaign merges them the same way.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

#: Entity types: non-player and player characters, places, items, factions.
NPC, PC, PLACE, ITEM, FACTION = "NPC", "PC", "PLACE", "ITEM", "FACTION"
ENTITY_TYPES = (NPC, PC, PLACE, ITEM, FACTION)
#: Candidate kinds: an explicit task (quest) or an open thread (plot hook).
QUEST, HOOK = "QUEST", "HOOK"

#: Columns of :attr:`Knowledge.entities`.
ENTITY_COLUMNS = (
    "entity_id",
    "name",
    "type",
    "aliases",
    "mentions",
    "segments",
    "first_time",
    "last_time",
    "speakers",
    "sources",
)
#: Columns of :attr:`Knowledge.mentions`: one row per time an entity is named (or speaks).
MENTION_COLUMNS = (
    "entity_id",
    "name",
    "surface",
    "segment_id",
    "time",
    "end",
    "speaker",
    "player",
    "start_char",
    "end_char",
    "kind",
    "source",
    "ic_ooc",
)
#: Columns of :attr:`Knowledge.candidates`.
CANDIDATE_COLUMNS = ("candidate_id", "kind", "text", "segment_ids", "time", "speaker", "entities")

#: Mention kinds: the name is said in the text, or the entity speaks the line.
NAMED, SPEAKS = "named", "speaks"

_TUPLE_COLUMNS = {"aliases", "speakers", "sources", "segment_ids", "entities"}


@dataclass
class Knowledge:
    """Entities, their mentions and quest/hook candidates of one session (or a transcript).

    Attributes
    ----------
    entities, mentions, candidates : pandas.DataFrame
        With :data:`ENTITY_COLUMNS`, :data:`MENTION_COLUMNS` and :data:`CANDIDATE_COLUMNS`.
    built_from : dict
        What the tables were built from (backend, override seq, rerun id, ...).
    """

    entities: pd.DataFrame
    mentions: pd.DataFrame
    candidates: pd.DataFrame
    built_from: dict[str, Any] = field(default_factory=dict)

    def of_type(self, *types: str) -> pd.DataFrame:
        """Entities of the given types."""
        return self.entities[self.entities["type"].isin(types)]

    def names(self, *types: str) -> set[str]:
        """Every name and alias of the entities of ``types`` (all types when none), case-folded."""
        rows = self.of_type(*types) if types else self.entities
        return {
            n.casefold() for name, aliases in zip(rows["name"], rows["aliases"], strict=True) for n in (name, *aliases)
        }

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: ``built_from`` and the three tables as lists of records."""
        return {
            "built_from": self.built_from,
            "entities": _records(self.entities),
            "mentions": _records(self.mentions),
            "candidates": _records(self.candidates),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Knowledge:
        """Read back what :meth:`to_dict` wrote."""
        return cls(
            _frame(data.get("entities", []), ENTITY_COLUMNS),
            _frame(data.get("mentions", []), MENTION_COLUMNS),
            _frame(data.get("candidates", []), CANDIDATE_COLUMNS),
            dict(data.get("built_from", {})),
        )


def empty_knowledge(built_from: dict[str, Any] | None = None) -> Knowledge:
    """A knowledge base with no entities."""
    return Knowledge(
        pd.DataFrame(columns=list(ENTITY_COLUMNS)),
        pd.DataFrame(columns=list(MENTION_COLUMNS)),
        pd.DataFrame(columns=list(CANDIDATE_COLUMNS)),
        dict(built_from or {}),
    )


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [{key: _plain(value) for key, value in row.items()} for row in frame.to_dict("records")]


def _frame(records: list[dict[str, Any]], columns: tuple[str, ...]) -> pd.DataFrame:
    frame = pd.DataFrame(records, columns=list(columns))
    for column in _TUPLE_COLUMNS & set(columns):
        frame[column] = [tuple(v) if isinstance(v, list | tuple) else () for v in frame[column]]
    return frame


def _plain(value: Any) -> Any:
    if isinstance(value, tuple | list | np.ndarray):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value
