"""IC/OOC, segment type and character classification of segments.

:mod:`~livereview.stages.classify.labels` (what a classifier returns),
:mod:`~livereview.stages.classify.features` and :mod:`~livereview.stages.classify.training`
(sentence embeddings, cues, the trained heads),
:mod:`~livereview.stages.classify.embedding` (the default classifier),
:mod:`~livereview.stages.classify.tags` (character and NPC tags),
:mod:`~livereview.stages.classify.keywords` (the baseline),
:mod:`~livereview.stages.classify.llm` (an OpenAI-compatible LLM),
:mod:`~livereview.stages.classify.registry` (classifiers by name) and
:mod:`~livereview.stages.classify.frame` (what a classifier sees of a session).

Usage
-----
>>> classifier = resolve_classifier("keywords")
>>> classifier.__name__
'keyword_classifier'
"""

from livereview.stages.classify.embedding import (
    EmbeddingClassifier,
    build_default_classifier,
    decide,
    default_classifier,
    refit,
)
from livereview.stages.classify.frame import CONTEXT_SEGMENTS, classification_frame, classify_segments
from livereview.stages.classify.keywords import keyword_classifier
from livereview.stages.classify.labels import CLASSIFICATION_COLUMNS, NEEDS_ATTENTION_THRESHOLD, Classifier
from livereview.stages.classify.llm import LLMClassifier
from livereview.stages.classify.registry import classifier_problem, resolve_classifier
from livereview.stages.classify.tags import character_tags, npc_name

__all__ = [
    "CLASSIFICATION_COLUMNS",
    "CONTEXT_SEGMENTS",
    "NEEDS_ATTENTION_THRESHOLD",
    "Classifier",
    "EmbeddingClassifier",
    "LLMClassifier",
    "build_default_classifier",
    "character_tags",
    "classification_frame",
    "classifier_problem",
    "classify_segments",
    "decide",
    "default_classifier",
    "keyword_classifier",
    "npc_name",
    "refit",
    "resolve_classifier",
]
