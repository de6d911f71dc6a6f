"""The classifiers that run offline, by name: the default embedding classifier and the keyword baseline."""

from __future__ import annotations

from livereview.stages.classify.embedding import default_classifier, synthetic_classifier
from livereview.stages.classify.keywords import keyword_classifier
from livereview.stages.classify.labels import Classifier

#: How an offline classifier may be given, for error messages.
OFFLINE_SPECS = (
    "None or 'default' (sentence embeddings tuned on real table talk, offline), 'synthetic' (the earlier "
    "classifier: plain embeddings, synthetic lines only), 'keywords' (baseline), or any callable(frame, party)"
)


def resolve_offline_classifier(spec: str | Classifier | None) -> Classifier:
    """``None``/``"default"``: the default classifier (loaded once per process); ``"synthetic"``: the
    earlier one, trained on synthetic lines only; ``"keywords"``: the baseline; a callable as is.

    Raises
    ------
    ValueError
        For any other value, listing the accepted ones.
    """
    if callable(spec):
        return spec
    if spec is None or spec == "default":
        return default_classifier()
    if spec == "synthetic":
        return synthetic_classifier()
    if spec == "keywords":
        return keyword_classifier
    msg = f"unknown offline classifier {spec!r}; pass {OFFLINE_SPECS}"
    raise ValueError(msg)
