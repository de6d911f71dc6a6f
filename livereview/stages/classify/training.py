"""Training the default classifier's heads: data, logistic regression, calibration, disk cache.

The heads are fitted on the ``train`` split of ``data/tabletop_utterances.jsonl`` and,
by default, on the ``train`` episodes of the labelled Critical Role talk
(:mod:`~livereview.stages.classify.real_talk`: turns and sentences, with and without the
party), temperatures from folds grouped by scene and episode. They are kept under
``~/.cache/livereview/classify/``, in a file named by a hash of the data, the encoder's
adapters and :data:`MODEL_VERSION`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

import numpy as np
import pandas as pd

from livereview.core.jsonl import numbered_json_lines
from livereview.core.party import Character, Party
from livereview.core.segments import IC_OOC_LABELS, SEGMENT_TYPES
from livereview.stages.cache import cache_dir, write_atomically
from livereview.stages.classify.features import FEATURE_NAMES, MODEL_NAME, NEIGHBOUR_WEIGHT, SentenceEncoder, features

#: Bump when features, training or the data change in a way that invalidates cached heads.
MODEL_VERSION = "2.0"
TRAINING_DATA = Path(str(files("livereview").joinpath("data", "tabletop_utterances.jsonl")))


# ---------------------------------------------------------------- heads


@dataclass(frozen=True)
class LinearHead:
    """A multinomial logistic-regression head with temperature scaling.

    ``predict_proba(x)`` is ``softmax((x @ coef.T + intercept) / temperature)``; shapes:
    ``coef`` (k, f), ``intercept`` (k,), ``classes`` (k,).
    """

    classes: tuple[str, ...]
    coef: np.ndarray
    intercept: np.ndarray
    temperature: float = 1.0

    def logits(self, x: np.ndarray) -> np.ndarray:
        """Raw scores, shape (n, k), before temperature and softmax."""
        return x @ self.coef.T + self.intercept

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """Class probabilities, shape (n, k), columns in ``classes`` order."""
        return _softmax(self.logits(x) / self.temperature)


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=1, keepdims=True)


#: Inverse regularisation strength of the heads, chosen on grouped cross-validation.
HEAD_C = 5.0


def fit_head(x: np.ndarray, y: Sequence[str], weights: np.ndarray | None = None, *, c: float = HEAD_C) -> LinearHead:
    """Fit a deterministic multinomial logistic regression (lbfgs, L2)."""
    from sklearn.linear_model import LogisticRegression
    from threadpoolctl import threadpool_limits

    model = LogisticRegression(C=c, max_iter=3000, class_weight="balanced")
    with threadpool_limits(limits=1):  # small problem: BLAS threads only add contention
        model.fit(x, np.asarray(y), sample_weight=weights)
    coef, intercept = model.coef_.astype(np.float64), model.intercept_.astype(np.float64)
    return LinearHead(tuple(model.classes_.tolist()), coef, intercept)


def fit_temperature(logits: np.ndarray, y: Sequence[str], classes: Sequence[str]) -> float:
    """The temperature minimising the negative log-likelihood of out-of-fold ``logits``."""
    from scipy.optimize import minimize_scalar

    target = np.array([list(classes).index(label) for label in y])

    def loss(temperature: float) -> float:
        probabilities = _softmax(logits / temperature)
        return float(-np.log(probabilities[np.arange(len(target)), target] + 1e-12).mean())

    return float(minimize_scalar(loss, bounds=(0.2, 10.0), method="bounded").x)


def calibrated_head(x: np.ndarray, y: Sequence[str], groups: Sequence[str], *, folds: int = 5) -> LinearHead:
    """Fit a head on all rows; set its temperature from out-of-fold logits (grouped folds)."""
    from sklearn.model_selection import GroupKFold

    y = np.asarray(y)
    head = fit_head(x, y)
    out_of_fold = np.zeros((len(y), len(head.classes)))
    for train, test in GroupKFold(n_splits=folds).split(x, y, groups):
        fold = fit_head(x[train], y[train])
        logits = fold.logits(x[test])
        for k, label in enumerate(fold.classes):
            out_of_fold[test, head.classes.index(label)] = logits[:, k]
        for label in set(head.classes) - set(fold.classes):
            out_of_fold[test, head.classes.index(label)] = -1e3
    temperature = fit_temperature(out_of_fold, y, head.classes)
    return LinearHead(head.classes, head.coef, head.intercept, temperature)


# ---------------------------------------------------------------- training data

_REQUIRED_FIELDS = ("text", "speaker", "speaker_role", "ic_ooc", "segment_type", "scene", "order", "table", "split")


def load_training_data(path: str | Path = TRAINING_DATA) -> pd.DataFrame:
    """The labelled utterances, one row per line, with ``player`` and ``is_game_master`` added.

    Raises
    ------
    ValueError
        When a line is not JSON, lacks a field or has an unknown label (naming the line).
    """
    path = Path(path)
    records = []
    for number, record in numbered_json_lines(path):
        missing = [f for f in _REQUIRED_FIELDS if f not in record]
        if missing or record["ic_ooc"] not in IC_OOC_LABELS or record["segment_type"] not in SEGMENT_TYPES:
            msg = (
                f"{path} line {number}: needs {', '.join(_REQUIRED_FIELDS)} with ic_ooc in "
                f"{IC_OOC_LABELS} and segment_type in {SEGMENT_TYPES}; got {record!r}"
            )
            raise ValueError(msg)
        records.append(record)
    data = pd.DataFrame(records)
    data["is_game_master"] = data["speaker_role"] == "gm"
    data["player"] = data["speaker"]
    return data


def table_parties(data: pd.DataFrame) -> dict[str, Party]:
    """The party of each ``table`` in the training data, rebuilt from who speaks."""
    parties = {}
    for table, rows in data.groupby("table", sort=True):
        game_master = rows.loc[rows["is_game_master"], "speaker"].iloc[0]
        players = rows.loc[~rows["is_game_master"], ["character", "speaker"]].drop_duplicates()
        characters = tuple(Character(c, p) for c, p in players.itertuples(index=False))
        parties[str(table)] = Party(game_master, characters, str(table))
    return parties


def training_features(data: pd.DataFrame, encoder: SentenceEncoder) -> np.ndarray:
    """Features of every training row, neighbours taken within its scene; shape (n, f).

    The texts are encoded afresh (not from the encoder's cache), so a fit from scratch is
    the same whatever the encoder embedded before.
    """
    embeddings = encoder(data["text"].tolist(), cached=False)
    parties = table_parties(data)
    x = np.zeros((len(data), 2 * encoder.dimension + len(FEATURE_NAMES)), dtype=np.float32)
    for _, rows in data.groupby("scene", sort=False):
        rows = rows.sort_values("order")
        positions = data.index.get_indexer(rows.index)
        x[positions] = features(rows, parties[rows["table"].iloc[0]], embeddings[positions])
    return x


@dataclass(frozen=True)
class TrainingSet:
    """The rows a classifier was fitted on: features (n, f), labels and weights (n,).

    ``segment_type`` is ``""`` where a row teaches IC/OOC only.
    """

    x: np.ndarray
    ic_ooc: np.ndarray
    segment_type: np.ndarray
    weights: np.ndarray

    def plus(self, other: TrainingSet) -> TrainingSet:
        """Both sets' rows, these first."""
        return TrainingSet(
            np.vstack([self.x, other.x]),
            np.concatenate([self.ic_ooc, other.ic_ooc]),
            np.concatenate([self.segment_type, other.segment_type]),
            np.concatenate([self.weights, other.weights]),
        )


# ---------------------------------------------------------------- disk cache


def cache_path(data_path: Path, *, inputs: Sequence[Path] = ()) -> Path:
    """The cache file for heads fitted on ``data_path`` (and the other files in ``inputs``).

    Named by a hash of the data and the settings that change the fitted heads.
    """
    digest = hashlib.sha256()
    for path in (data_path, *inputs):
        digest.update(path.read_bytes())
    settings = (MODEL_VERSION, MODEL_NAME, HEAD_C, NEIGHBOUR_WEIGHT, FEATURE_NAMES, len(inputs))
    digest.update(repr(settings).encode())
    return cache_dir() / "classify" / f"heads-{digest.hexdigest()[:16]}.npz"


def real_talk_features(encoder: SentenceEncoder) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Features, IC/OOC labels, segment types and episode of every ``train`` row of the real talk.

    Each stretch counts four times: as turns and as sentences, with the party and without.
    """
    from livereview.stages.classify.real_talk import load_labels, stretches

    data = load_labels()
    blocks, ic_ooc, types, episodes = [], [], [], []
    for granularity in ("turn", "sentence"):
        for with_party in (True, False):
            for stretch in stretches(data, granularity=granularity, with_party=with_party, split="train"):
                embeddings = encoder(stretch.frame["text"].tolist(), cached=False)
                blocks.append(features(stretch.frame, stretch.party, embeddings))
                ic_ooc += stretch.truth["ic_ooc"].tolist()
                types += stretch.truth["segment_type"].tolist()
                episodes += [stretch.episode] * len(stretch.frame)
    return (
        np.vstack(blocks),
        np.array(ic_ooc, dtype=object),
        np.array(types, dtype=object),
        np.array(episodes, dtype=object),
    )


def train_heads(
    data: pd.DataFrame, encoder: SentenceEncoder, *, real_talk: bool = True
) -> tuple[LinearHead, LinearHead, TrainingSet]:
    """Fit both heads on the ``train`` split and the real talk's ``train`` episodes; temperatures from grouped folds."""
    train = data[data["split"] == "train"]
    x = training_features(data, encoder)[data.index.get_indexer(train.index)]
    ic_ooc, types = train["ic_ooc"].to_numpy(dtype=object), train["segment_type"].to_numpy(dtype=object)
    groups = train["scene"].to_numpy(dtype=object)
    if real_talk:
        real_x, real_ic_ooc, real_types, episodes = real_talk_features(encoder)
        x = np.vstack([x, real_x])
        ic_ooc, types = np.concatenate([ic_ooc, real_ic_ooc]), np.concatenate([types, real_types])
        groups = np.concatenate([groups, episodes])
    ic_head = calibrated_head(x, ic_ooc, groups)
    type_head = calibrated_head(x, types, groups)
    return ic_head, type_head, TrainingSet(x, ic_ooc, types, np.ones(len(x)))


def save_heads(path: Path, ic_head: LinearHead, type_head: LinearHead, training: TrainingSet) -> None:
    """Write both heads and their training rows to ``path`` (``.npz``, no pickles), atomically."""
    arrays: dict[str, np.ndarray] = {}
    for prefix, head in (("ic", ic_head), ("type", type_head)):
        arrays[f"{prefix}_classes"] = np.array(head.classes)
        arrays[f"{prefix}_coef"] = head.coef
        arrays[f"{prefix}_intercept"] = head.intercept
        arrays[f"{prefix}_temperature"] = np.array(head.temperature)
    arrays.update(
        x=training.x,
        y_ic=training.ic_ooc.astype(str),
        y_type=training.segment_type.astype(str),
        weights=training.weights,
    )
    write_atomically(path, lambda handle: np.savez_compressed(handle, **arrays))


def load_heads(path: Path) -> tuple[LinearHead, LinearHead, TrainingSet]:
    """Read what :func:`save_heads` wrote."""
    with np.load(path, allow_pickle=False) as arrays:
        heads = [
            LinearHead(
                tuple(arrays[f"{prefix}_classes"].tolist()),
                arrays[f"{prefix}_coef"],
                arrays[f"{prefix}_intercept"],
                float(arrays[f"{prefix}_temperature"]),
            )
            for prefix in ("ic", "type")
        ]
        training = TrainingSet(
            arrays["x"],
            arrays["y_ic"].astype(object),
            arrays["y_type"].astype(object),
            arrays["weights"],
        )
    return heads[0], heads[1], training
