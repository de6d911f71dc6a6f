"""The default classifier: sentence embeddings and context cues into two calibrated heads.

:class:`EmbeddingClassifier` embeds each segment with all-MiniLM-L6-v2
(:mod:`~livereview.stages.classify.features`) and feeds the embedding, its neighbours'
embeddings and a few cues (game master speaking, party names, first/second person,
quotes, dice talk) to two logistic-regression heads, one for IC/OOC and one for the
segment type; :func:`decide` keeps their answers consistent with each other and the
speaker, and :func:`~livereview.stages.classify.tags.character_tags` derives the tag.
The heads are trained on ``data/tabletop_utterances.jsonl`` at first use and cached on
disk (:mod:`~livereview.stages.classify.training`).
:meth:`EmbeddingClassifier.with_corrections` refits them with the operator's corrections.

Usage
-----
>>> classifier = default_classifier()                    # doctest: +SKIP
>>> labels = classifier(frame, party)                    # doctest: +SKIP
>>> better = classifier.with_corrections(corrections)    # doctest: +SKIP
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from livereview.core.party import Party
from livereview.core.segments import IC, IC_OOC_LABELS, MIXED, OOC, SEGMENT_TYPES
from livereview.stages.classify.features import (
    NEIGHBOUR_WEIGHT,
    SentenceEncoder,
    features,
    game_master_flags,
    is_missing,
    load_encoder,
)
from livereview.stages.classify.finetune import ADAPTER_PATH, load_tuned_encoder
from livereview.stages.classify.labels import (
    CLASSIFICATION_COLUMNS,
    DM_TAG,
    GM_TYPES,
    IC_TYPES,
    NPC_TAG,
    OOC_TYPES,
    PLAYER_TYPES,
)
from livereview.stages.classify.real_talk import LABELS as REAL_TALK_LABELS
from livereview.stages.classify.tags import character_tags
from livereview.stages.classify.training import (
    MODEL_VERSION,
    TRAINING_DATA,
    LinearHead,
    TrainingSet,
    cache_path,
    fit_head,
    load_heads,
    load_training_data,
    save_heads,
    train_heads,
)

logger = logging.getLogger(__name__)

#: Weight of one operator correction relative to one shipped training line.
CORRECTION_WEIGHT = 12.0
#: Cosine similarity above which a corrected NPC line lends its name to a new line.
NPC_MEMORY_SIMILARITY = 0.6


@dataclass(frozen=True)
class NpcMemory:
    """Corrected NPC lines: unit embeddings (m, d) and the NPC name of each."""

    embeddings: np.ndarray
    names: tuple[str, ...]

    def guess(self, embeddings: np.ndarray, threshold: float = NPC_MEMORY_SIMILARITY) -> list[str | None]:
        """The name of the most similar remembered line, when similar enough; one per row."""
        if not self.names or not len(embeddings):
            return [None] * len(embeddings)
        similarity = embeddings @ self.embeddings.T
        best = similarity.argmax(axis=1)
        return [self.names[b] if similarity[i, b] >= threshold else None for i, b in enumerate(best)]


class EmbeddingClassifier:
    """Sentence embeddings plus context cues into two calibrated logistic-regression heads.

    Parameters
    ----------
    encoder : SentenceEncoder
    ic_ooc_head, segment_type_head : LinearHead
    training : TrainingSet, optional
        What the heads were fitted on; needed by :meth:`with_corrections`.
    corrections : int
        How many operator corrections the heads include (part of the name).
    npc_memory : NpcMemory, optional
        Corrected NPC lines whose names are lent to similar unnamed NPC lines.
    real_talk : bool
        Whether the encoder and heads learnt from real table talk (part of the name).

    Calling it as ``classifier(frame, party)`` returns the :data:`CLASSIFICATION_COLUMNS`.
    The same frame always gives the same answer.
    """

    def __init__(
        self,
        encoder: SentenceEncoder,
        ic_ooc_head: LinearHead,
        segment_type_head: LinearHead,
        *,
        training: TrainingSet | None = None,
        corrections: int = 0,
        npc_memory: NpcMemory | None = None,
        real_talk: bool = False,
    ) -> None:
        self.encoder = encoder
        self.ic_ooc_head = ic_ooc_head
        self.segment_type_head = segment_type_head
        self.training = training
        self.corrections = corrections
        self.real_talk = real_talk
        self.npc_memory = npc_memory or NpcMemory(np.zeros((0, encoder.dimension), np.float32), ())

    @property
    def name(self) -> str:
        """Name and version written to the ``classifier`` column."""
        base = f"minilm-{'realtalk-' if self.real_talk else ''}logreg-{MODEL_VERSION}"
        return f"{base}+{self.corrections}corrections" if self.corrections else base

    def __repr__(self) -> str:
        return f"<EmbeddingClassifier {self.name}>"

    def probabilities(self, frame: pd.DataFrame, party: Party | None = None) -> tuple[np.ndarray, np.ndarray]:
        """IC/OOC and segment-type probabilities of each row, before :func:`decide`.

        Shapes (n, 3) and (n, 6), columns in ``ic_ooc_head.classes`` and
        ``segment_type_head.classes`` order.
        """
        x = features(frame, party, self.encoder(frame["text"].fillna("").astype(str).tolist()))
        return self.ic_ooc_head.predict_proba(x), self.segment_type_head.predict_proba(x)

    def __call__(self, frame: pd.DataFrame, party: Party | None = None) -> pd.DataFrame:
        if frame.empty:
            return pd.DataFrame(columns=list(CLASSIFICATION_COLUMNS), index=frame.index)
        embeddings = self.encoder(frame["text"].fillna("").astype(str).tolist())
        x = features(frame, party, embeddings)
        ic_ooc, confidence, types = decide(
            self.ic_ooc_head.classes,
            self.ic_ooc_head.predict_proba(x),
            self.segment_type_head.classes,
            self.segment_type_head.predict_proba(x),
            game_master_flags(frame, party),
        )
        guesses = self.npc_memory.guess(embeddings)
        # a game master's line much like one an operator said an NPC speaks is that NPC's dialogue
        types = ["NPC_DIALOGUE" if t == "DM_NARRATION" and g else t for t, g in zip(types, guesses, strict=True)]
        return pd.DataFrame(
            {
                "ic_ooc": ic_ooc,
                "ic_ooc_confidence": np.round(confidence, 4),
                "segment_type": types,
                "character_tag": character_tags(frame, types, party, guesses),
                "classifier": self.name,
            },
            index=frame.index,
        )

    def with_corrections(
        self,
        examples: pd.DataFrame,
        party: Party | None = None,
        *,
        weight: float = CORRECTION_WEIGHT,
    ) -> EmbeddingClassifier:
        """A new classifier refitted on this one's training rows plus operator corrections.

        Parameters
        ----------
        examples : DataFrame
            One corrected segment per row: ``text``, ``is_game_master``, ``player``,
            ``ic_ooc``, ``character_tag`` and optionally ``segment_type``. A missing
            ``ic_ooc`` or ``segment_type`` (None/NaN) means that label was not corrected.
            Without ``segment_type``, the game master's IC lines tagged ``"DM"`` teach
            narration and those tagged with another name teach NPC dialogue; such names
            are also remembered and lent to similar unnamed NPC lines. A player's tag
            always comes from the party, so correcting it teaches nothing more.
        party : Party, optional
            The session's party (for the name cues).
        weight : float
            Weight of each correction relative to one shipped training line.

        Returns
        -------
        EmbeddingClassifier
            Includes this classifier's own corrections, if any. Temperatures are kept.
        """
        if self.training is None:
            msg = "this classifier was built without its training rows; load it with default_classifier()"
            raise ValueError(msg)
        examples = _validated_corrections(examples)
        embeddings = self.encoder(examples["text"].tolist())
        x = features(examples.assign(speaker_id=None), party, embeddings)
        # A correction comes without its neighbours: it stands in as its own context.
        x[:, self.encoder.dimension : 2 * self.encoder.dimension] = NEIGHBOUR_WEIGHT * embeddings
        ic_labels = examples["ic_ooc"].fillna("").to_numpy(dtype=object)
        type_labels = np.array([_implied_type(row) for row in examples.itertuples(index=False)], dtype=object)
        added = TrainingSet(x, ic_labels, type_labels, np.full(len(examples), float(weight)))
        training = self.training.plus(added)
        heads = []
        for labels, head in ((training.ic_ooc, self.ic_ooc_head), (training.segment_type, self.segment_type_head)):
            keep = labels != ""
            fitted = fit_head(training.x[keep], labels[keep], training.weights[keep])
            heads.append(LinearHead(fitted.classes, fitted.coef, fitted.intercept, head.temperature))
        npc_rows = [
            i
            for i, row in enumerate(examples.itertuples(index=False))
            if row.is_game_master is True and row.character_tag not in ("", DM_TAG, NPC_TAG, None)
        ]
        memory = NpcMemory(
            np.vstack([self.npc_memory.embeddings, embeddings[npc_rows]]),
            (*self.npc_memory.names, *(str(examples["character_tag"].iloc[i]) for i in npc_rows)),
        )
        return EmbeddingClassifier(
            self.encoder,
            heads[0],
            heads[1],
            training=training,
            corrections=self.corrections + len(examples),
            npc_memory=memory,
            real_talk=self.real_talk,
        )


def decide(
    ic_classes: Sequence[str],
    ic_probabilities: np.ndarray,
    type_classes: Sequence[str],
    type_probabilities: np.ndarray,
    game_master: np.ndarray,
) -> tuple[list[str], np.ndarray, list[str]]:
    """Pick IC/OOC, its confidence and a segment type consistent with both and the speaker.

    IC rows get an IC type, OOC rows an OOC type, MIXED rows any type; the game master
    never gets character speech or action, a player never narration or NPC dialogue
    (when the speaker is unknown, NaN in ``game_master``, any type is allowed).
    """
    best = ic_probabilities.argmax(axis=1)
    ic_ooc = [ic_classes[b] for b in best]
    confidence = ic_probabilities[np.arange(len(best)), best]
    types = []
    for row, label in enumerate(ic_ooc):
        allowed = set(SEGMENT_TYPES)
        if label == IC:
            allowed &= set(IC_TYPES)
        elif label == OOC:
            allowed &= set(OOC_TYPES)
        if game_master[row] == 1.0:
            allowed &= set(GM_TYPES)
        elif game_master[row] == 0.0:
            allowed &= set(PLAYER_TYPES)
        scores = [p if c in allowed else -1.0 for c, p in zip(type_classes, type_probabilities[row], strict=True)]
        types.append(type_classes[int(np.argmax(scores))])
    return ic_ooc, confidence, types


_CORRECTION_COLUMNS = ("text", "is_game_master", "player", "ic_ooc", "character_tag")


def _validated_corrections(examples: pd.DataFrame) -> pd.DataFrame:
    missing = [c for c in _CORRECTION_COLUMNS if c not in examples]
    if missing:
        msg = f"corrections need the columns {', '.join(_CORRECTION_COLUMNS)}; missing {', '.join(missing)}"
        raise ValueError(msg)
    examples = examples.reset_index(drop=True).copy()
    if "segment_type" not in examples:
        examples["segment_type"] = None
    examples["is_game_master"] = [None if is_missing(v) else bool(v) for v in examples["is_game_master"]]
    examples["character_tag"] = [None if is_missing(v) else str(v) for v in examples["character_tag"]]
    for column, allowed in (("ic_ooc", IC_OOC_LABELS), ("segment_type", SEGMENT_TYPES)):
        examples[column] = [None if is_missing(v) else v for v in examples[column]]
        bad = sorted({str(v) for v in examples[column] if v is not None and v not in allowed})
        if bad:
            msg = f"correction {column} {', '.join(bad)} unknown; use one of {', '.join(allowed)}"
            raise ValueError(msg)
    return examples


def _implied_type(row: Any) -> str:
    """The segment type a correction teaches, ``""`` when it teaches none."""
    if row.segment_type is not None:
        return str(row.segment_type)
    if row.is_game_master is True and row.ic_ooc in (IC, MIXED) and row.character_tag:
        return "DM_NARRATION" if row.character_tag == DM_TAG else "NPC_DIALOGUE"
    return ""


def refit(classifier: EmbeddingClassifier, examples: pd.DataFrame, party: Party | None = None) -> EmbeddingClassifier:
    """Same as ``classifier.with_corrections(examples, party)``."""
    return classifier.with_corrections(examples, party)


def build_default_classifier(
    data_path: str | Path = TRAINING_DATA, *, use_cache: bool = True, real_talk: bool = True
) -> EmbeddingClassifier:
    """Load the encoder, then load the fitted heads from the disk cache or fit and cache them.

    With ``real_talk`` (the default) the encoder is the one tuned on real table talk
    (:func:`~livereview.stages.classify.finetune.load_tuned_encoder`) and the heads also
    learn from the labelled Critical Role turns; ``real_talk=False`` gives the plain encoder
    and the synthetic lines only (the classifier of earlier releases, kept for comparison).
    The cache file is keyed by a hash of the training data, the adapters and
    :data:`MODEL_VERSION`; when the cache folder cannot be written the heads are fitted in
    memory only.
    """
    data_path = Path(data_path)
    encoder = load_tuned_encoder() if real_talk else load_encoder()
    path = cache_path(data_path, inputs=(ADAPTER_PATH, REAL_TALK_LABELS) if real_talk else ())
    if use_cache and path.is_file():
        try:
            ic_head, type_head, training = load_heads(path)
        except (OSError, KeyError, ValueError) as error:
            logger.warning("ignoring unreadable classifier cache %s (%s); refitting", path, error)
        else:
            return EmbeddingClassifier(encoder, ic_head, type_head, training=training, real_talk=real_talk)
    logger.info("fitting the classifier heads on %s", data_path)
    ic_head, type_head, training = train_heads(load_training_data(data_path), encoder, real_talk=real_talk)
    if use_cache:
        try:
            save_heads(path, ic_head, type_head, training)
        except OSError as error:
            logger.warning("could not cache the classifier heads in %s (%s)", path, error)
    return EmbeddingClassifier(encoder, ic_head, type_head, training=training, real_talk=real_talk)


@functools.lru_cache(maxsize=1)
def default_classifier() -> EmbeddingClassifier:
    """The default classifier, built once per process."""
    return build_default_classifier()


@functools.lru_cache(maxsize=1)
def synthetic_classifier() -> EmbeddingClassifier:
    """The earlier default (plain encoder, synthetic lines only), built once per process, for comparisons."""
    return build_default_classifier(real_talk=False)
