"""The default classifier's encoder tuned on real table talk: low-rank adapters for all-MiniLM-L6-v2.

Frozen MiniLM embeddings separate scripted IC and OOC lines well but not real ones (a
rules question and a character's question read alike to it). :func:`train_adapter` fits
rank-:data:`RANK` adapters (LoRA) on the attention queries and values and the
feed-forward layers of every transformer layer, with two classification heads on the
mean-pooled embedding (IC/OOC/MIXED and the segment type), on the ``train`` episodes of
the labelled Critical Role turns and their sentences plus the synthetic training lines.
Only the adapters are kept: ``data/classify/minilm-adapter.npz``, about 1 MB.

:func:`load_tuned_encoder` merges them into a copy of the model's weights
(``W + scale * B @ A``), so the tuned encoder costs exactly what the plain one does.

Run ``python -m livereview.stages.classify.finetune`` to fit the adapters again (about
5 minutes on two cores) and rewrite the file.
"""

from __future__ import annotations

import copy
import functools
import logging
import math
from collections.abc import Sequence
from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from livereview.core.segments import IC_OOC_LABELS, SEGMENT_TYPES
from livereview.stages.classify.features import SentenceEncoder, load_encoder

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

logger = logging.getLogger(__name__)

ADAPTER_PATH = Path(str(files("livereview").joinpath("data", "classify", "minilm-adapter.npz")))
RANK = 8
ALPHA = 16.0
EPOCHS = 5
BATCH_SIZE = 16
LEARNING_RATE = 1e-3
SEED = 20261207
#: The layers of each transformer block that get an adapter (attribute paths in a BertLayer).
ADAPTED = ("attention.self.query", "attention.self.value", "intermediate.dense", "output.dense")


def training_texts() -> tuple[list[str], list[str], list[str]]:
    """Texts, IC/OOC labels and segment types the adapters learn from.

    Every ``train`` turn of the labelled real talk, each piece of a turn of several
    pieces, and the synthetic lines of the ``train`` split.
    """
    from livereview.stages.classify.real_talk import load_labels
    from livereview.stages.classify.training import load_training_data

    texts, ic_ooc, types = [], [], []
    real = load_labels()
    for turn in real[real["split"] == "train"].itertuples(index=False):
        pieces = turn.sentences if len(turn.sentences) > 1 else []
        for piece in [{"text": turn.text, "ic_ooc": turn.ic_ooc, "segment_type": turn.segment_type}, *pieces]:
            texts.append(piece["text"])
            ic_ooc.append(piece["ic_ooc"])
            types.append(piece["segment_type"])
    synthetic = load_training_data()
    synthetic = synthetic[synthetic["split"] == "train"]
    return (
        texts + synthetic["text"].tolist(),
        ic_ooc + synthetic["ic_ooc"].tolist(),
        types + synthetic["segment_type"].tolist(),
    )


def train_adapter(
    encoder: SentenceEncoder, texts: Sequence[str], ic_ooc: Sequence[str], types: Sequence[str], *, epochs: int = EPOCHS
) -> dict[str, np.ndarray]:
    """Fit the adapters on ``texts`` (the encoder's own weights are left as they are).

    Returns ``{"<layer>.<path>.A": (rank, in), "<layer>.<path>.B": (out, rank)}`` arrays.
    """
    import torch
    from torch import nn
    from tqdm.auto import tqdm

    class LowRank(nn.Module):
        """A frozen linear layer plus a trainable update ``scale * B @ A``."""

        def __init__(self, base: nn.Linear) -> None:
            super().__init__()
            self.base = base
            self.A = nn.Parameter(torch.randn(RANK, base.in_features) * 0.01)
            self.B = nn.Parameter(torch.zeros(base.out_features, RANK))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.base(x) + (x @ self.A.T @ self.B.T) * (ALPHA / RANK)

    torch.manual_seed(SEED)
    model = copy.deepcopy(encoder.model)
    bert, tokenizer = model[0].auto_model, model.tokenizer
    for parameter in bert.parameters():
        parameter.requires_grad = False
    adapters: dict[str, LowRank] = {}
    for index, layer in enumerate(bert.encoder.layer):
        for path in ADAPTED:
            owner_path, _, name = path.rpartition(".")
            owner = layer.get_submodule(owner_path)
            adapters[f"{index}.{path}"] = adapter = LowRank(getattr(owner, name))
            setattr(owner, name, adapter)
    ic_classes, type_classes = list(IC_OOC_LABELS), list(SEGMENT_TYPES)
    heads = nn.ModuleDict({"ic_ooc": nn.Linear(encoder.dimension, 3), "segment_type": nn.Linear(encoder.dimension, 6)})
    y_ic = torch.tensor([ic_classes.index(label) for label in ic_ooc])
    y_type = torch.tensor([type_classes.index(label) for label in types])
    counts = np.bincount(y_ic.numpy(), minlength=3).astype(float)
    ic_weights = torch.tensor(counts.sum() / (3 * np.maximum(counts, 1)), dtype=torch.float32)
    parameters = [p for a in adapters.values() for p in (a.A, a.B)] + list(heads.parameters())
    optimiser = torch.optim.AdamW(parameters, lr=LEARNING_RATE, weight_decay=0.01)
    steps = epochs * math.ceil(len(texts) / BATCH_SIZE)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimiser, lambda s: min(1.0, (s + 1) / 50) * max(0.0, 1 - s / steps))
    bert.train()
    with tqdm(total=steps, desc="tuning the classifier encoder", unit="batch") as progress:
        for _ in range(epochs):
            for batch in torch.randperm(len(texts)).split(BATCH_SIZE):
                tokens = tokenizer([texts[i] for i in batch], padding=True, truncation=True, return_tensors="pt")
                hidden = bert(**tokens).last_hidden_state
                mask = tokens["attention_mask"].unsqueeze(-1).float()
                pooled = nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1), dim=-1) * 8.0
                loss = nn.functional.cross_entropy(heads["ic_ooc"](pooled), y_ic[batch], weight=ic_weights)
                loss = loss + 0.5 * nn.functional.cross_entropy(heads["segment_type"](pooled), y_type[batch])
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
                schedule.step()
                progress.update()
                progress.set_postfix(loss=f"{loss.item():.3f}")
    arrays = {}
    for key, adapter in adapters.items():
        arrays[f"{key}.A"] = adapter.A.detach().numpy().astype(np.float32)
        arrays[f"{key}.B"] = adapter.B.detach().numpy().astype(np.float32)
    return arrays


def merged_model(encoder: SentenceEncoder, arrays: dict[str, np.ndarray]) -> SentenceTransformer:
    """A copy of the encoder's model with the adapters merged into its weights."""
    import torch

    model = copy.deepcopy(encoder.model)
    layers = model[0].auto_model.encoder.layer
    with torch.no_grad():
        for index, layer in enumerate(layers):
            for path in ADAPTED:
                a, b = arrays[f"{index}.{path}.A"], arrays[f"{index}.{path}.B"]
                weight = layer.get_submodule(path).weight
                weight += torch.from_numpy((ALPHA / RANK) * (b @ a)).to(weight.dtype)
    return model


@functools.lru_cache(maxsize=1)
def load_tuned_encoder() -> SentenceEncoder:
    """The MiniLM encoder with the shipped adapters merged in, loaded once per process."""
    plain = load_encoder()
    with np.load(ADAPTER_PATH, allow_pickle=False) as stored:
        arrays = {key: stored[key] for key in stored.files}
    return SentenceEncoder(merged_model(plain, arrays))


def main() -> None:
    """Fit the adapters and write :data:`ADAPTER_PATH`."""
    logging.basicConfig(level=logging.INFO)
    texts, ic_ooc, types = training_texts()
    arrays = train_adapter(load_encoder(), texts, ic_ooc, types)
    ADAPTER_PATH.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(ADAPTER_PATH, **arrays)
    logger.info("wrote %s (%d texts)", ADAPTER_PATH, len(texts))


if __name__ == "__main__":
    main()
