"""Story knowledge of a session: entities (NPCs, player characters, places, items, factions) with every mention.

:mod:`~livereview.stages.knowledge.schema` (the tables a knowledge base holds),
:mod:`~livereview.stages.knowledge.extract` (mentions: spaCy's named entities, known names,
NPC speakers), :mod:`~livereview.stages.knowledge.aliases` (types and aliases merged into
entities, with MiniLM), :mod:`~livereview.stages.knowledge.build` (the offline backend and
quest/hook candidates) and :mod:`~livereview.stages.knowledge.llm` (an OpenAI-compatible
LLM returning the same tables).

May import: :mod:`livereview.core` and the other stages. spaCy is imported only by
:func:`~livereview.stages.knowledge.extract.load_nlp`, when a line is parsed.
"""

from livereview.stages.knowledge.aliases import build_entities, cluster_forms, normalize
from livereview.stages.knowledge.build import build_knowledge, find_candidates, npc_tags
from livereview.stages.knowledge.extract import KNOWLEDGE_INPUT_COLUMNS, extract_mentions, load_nlp
from livereview.stages.knowledge.schema import (
    CANDIDATE_COLUMNS,
    ENTITY_COLUMNS,
    ENTITY_TYPES,
    MENTION_COLUMNS,
    Knowledge,
    empty_knowledge,
)

__all__ = [
    "CANDIDATE_COLUMNS",
    "ENTITY_COLUMNS",
    "ENTITY_TYPES",
    "KNOWLEDGE_INPUT_COLUMNS",
    "MENTION_COLUMNS",
    "Knowledge",
    "build_entities",
    "build_knowledge",
    "cluster_forms",
    "empty_knowledge",
    "extract_mentions",
    "find_candidates",
    "load_nlp",
    "normalize",
    "npc_tags",
]
