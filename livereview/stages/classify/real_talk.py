"""Real table talk labelled for the classifier: Critical Role turns, as classifier input and as scores.

``data/crd3/crd3_labels.jsonl`` holds 2,040 labelled turns of 12 episodes, split into
``train`` and ``dev`` by episode, each also cut into sentence-length pieces with their own
labels (``data/crd3/README.md`` is the labelling guide). This module reads them, builds
the classifier's input for a stretch of turns or pieces (:func:`stretches`), and scores a
classifier's answers against the labels (:func:`score`), as ``benchmarks/bench_classify.py``
and the tests do.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd

from livereview.core.jsonl import numbered_json_lines
from livereview.core.party import Party, load_party
from livereview.core.segments import IC, MIXED, OOC
from livereview.stages.classify.labels import Classifier


class LearnsFromCorrections(Protocol):
    """A classifier that refits with operators' corrections (as ``EmbeddingClassifier`` does)."""

    def __call__(self, frame: pd.DataFrame, party: Party | None = None) -> pd.DataFrame: ...

    def with_corrections(self, examples: pd.DataFrame, party: Party | None = None, **options: Any) -> Classifier: ...


CRD3_DIR = Path(str(files("livereview").joinpath("data", "crd3")))
LABELS = CRD3_DIR / "crd3_labels.jsonl"
DOUBLE_LABELS = CRD3_DIR / "crd3_double.jsonl"
#: Party file of each campaign (the first two characters of an episode id).
PARTY_FILES = {"C1": CRD3_DIR / "party_c1.yaml", "C2": CRD3_DIR / "party_c2.yaml"}
GRANULARITIES = ("turn", "sentence")


def load_labels(path: Path = LABELS) -> pd.DataFrame:
    """The labelled turns, one row per turn, in episode and turn order (``sentences``: the pieces)."""
    data = pd.DataFrame([record for _, record in numbered_json_lines(path)])
    return data.sort_values(["episode", "turn"], ignore_index=True)


def campaign_party(episode: str) -> Party:
    """The party file of the episode's campaign."""
    return load_party(PARTY_FILES[episode[:2]])


@dataclass(frozen=True)
class Stretch:
    """Consecutive labelled turns (or their pieces) of one episode, ready to classify.

    ``frame`` is the classifier input (``text``, ``speaker_id``, ``player``,
    ``is_game_master``, ``context``), ``truth`` the labels of the same rows (``ic_ooc``,
    ``segment_type``, ``character``, ``scene``), ``party`` the campaign's party or ``None``.
    """

    episode: str
    name: str
    frame: pd.DataFrame
    truth: pd.DataFrame
    party: Party | None


def stretches(
    data: pd.DataFrame, *, granularity: str = "turn", with_party: bool = True, split: str | None = "dev"
) -> Iterator[Stretch]:
    """The labelled stretches of ``split`` (all with ``None``), as turns or as sentence pieces.

    With a party the game master is known (``is_game_master``) and each player's
    character is in the party; without one nobody's role is known, as when a transcript
    is classified with no party file.
    """
    if granularity not in GRANULARITIES:
        msg = f"unknown granularity {granularity!r}; use one of {GRANULARITIES}"
        raise ValueError(msg)
    rows = data if split is None else data[data["split"] == split]
    for (episode, name), turns in rows.groupby(["episode", "stretch"], sort=True):
        party = campaign_party(str(episode)) if with_party else None
        records, truth = [], []
        for turn in turns.itertuples(index=False):
            speaker = "+".join(turn.speakers)
            pieces = turn.sentences if granularity == "sentence" else [turn._asdict()]
            for number, piece in enumerate(pieces):
                records.append(_row(f"{episode}-{turn.turn}-{number}", piece["text"], speaker, party))
                truth.append(
                    {
                        "ic_ooc": piece["ic_ooc"],
                        "segment_type": piece["segment_type"],
                        "character": piece["character"],
                        "scene": turn.scene,
                        "speaker": speaker,
                    }
                )
        yield Stretch(str(episode), str(name), pd.DataFrame(records), pd.DataFrame(truth), party)


def _row(segment_id: str, text: str, speaker: str, party: Party | None) -> dict[str, object]:
    known = party is not None and (party.is_game_master(speaker) or party.character_of(speaker) is not None)
    return {
        "segment_id": segment_id,
        "text": text,
        "speaker_id": speaker,
        "player": speaker,
        "is_game_master": party.is_game_master(speaker) if known else None,
        "context": False,
    }


def score(truth: pd.DataFrame, predicted: pd.DataFrame) -> dict[str, float]:
    """The figures the classifier is held to, from labels and answers on the same rows.

    * ``macro_f1``: IC/OOC macro-F1 on the rows labelled IC or OOC (a MIXED answer there
      is wrong); ``macro_f1_3``: over IC, OOC and MIXED on every row;
    * ``combat_accuracy``, ``roleplay_accuracy``: IC/OOC accuracy per scene, every row;
    * ``player_tag``: share of in-character player rows with a named character whose tag
      is that character;
    * ``npc_recall``, ``npc_precision``: game-master rows voicing a named NPC tagged with
      that name, and the share of rows given an NPC's name (not DM, NPC or nothing) that
      are right.
    """
    from sklearn.metrics import f1_score

    y, p = truth["ic_ooc"].to_numpy(), predicted["ic_ooc"].to_numpy()
    pure = np.isin(y, (IC, OOC))
    right = y == p
    tags, expected = predicted["character_tag"].fillna("").to_numpy(), truth["character"].to_numpy()
    player_rows = np.isin(truth["segment_type"], ("CHARACTER_SPEECH", "CHARACTER_ACTION")) & (expected != "")
    npc_rows = (truth["segment_type"] == "NPC_DIALOGUE").to_numpy() & ~np.isin(expected, ("", "NPC"))
    named = ~np.isin(tags, ("", "DM", "NPC")) & (truth["speaker"] == "MATT").to_numpy()
    figures = {
        "rows": float(len(y)),
        "macro_f1": float(f1_score(y[pure], p[pure], labels=[IC, OOC], average="macro", zero_division=0.0)),
        "macro_f1_3": float(f1_score(y, p, labels=[IC, OOC, MIXED], average="macro", zero_division=0.0)),
        "accuracy": float(right.mean()),
        "player_tag": float((tags[player_rows] == expected[player_rows]).mean()) if player_rows.any() else np.nan,
        "npc_recall": float((tags[npc_rows] == expected[npc_rows]).mean()) if npc_rows.any() else np.nan,
        "npc_precision": float((tags[named] == expected[named]).mean()) if named.any() else np.nan,
        "npc_rows": float(npc_rows.sum()),
    }
    for scene in ("combat", "roleplay"):
        rows = (truth["scene"] == scene).to_numpy()
        figures[f"{scene}_accuracy"] = float(right[rows].mean()) if rows.any() else np.nan
    return figures


def classify_stretches(classifier: Classifier, items: list[Stretch]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The labels and the classifier's answers of every stretch, stacked in order."""
    truth = pd.concat([item.truth for item in items], ignore_index=True)
    answers = [classifier(item.frame, item.party).reset_index(drop=True) for item in items]
    return truth, pd.concat(answers, ignore_index=True)


def correction_curve(
    classifier: LearnsFromCorrections, items: list[Stretch], counts: Sequence[int] = (5, 20, 50), *, seed: int = 0
) -> pd.DataFrame:
    """What learning from ``k`` operator corrections does to the lines nobody corrected.

    For each ``k``, ``k`` rows the classifier got wrong (IC/OOC) are drawn at random and
    corrected with their labels (``classifier.with_corrections``); the
    refitted classifier then labels every row again. Returns one row per ``k``: IC/OOC
    accuracy on the uncorrected rows before and after, how many were right before and
    wrong after (collateral damage), and how many of the corrected rows it now gets right.
    The corrections are fitted with the first stretch's party (give stretches of one
    campaign, or without a party).
    """
    truth, before = classify_stretches(classifier, items)
    frames = pd.concat([item.frame for item in items], ignore_index=True)
    wrong = np.flatnonzero((truth["ic_ooc"] != before["ic_ooc"]).to_numpy())
    generator = np.random.default_rng(seed)
    rows = []
    for count in counts:
        chosen = generator.choice(wrong, size=min(count, len(wrong)), replace=False)
        examples = frames.loc[chosen, ["text", "is_game_master", "player"]].assign(
            ic_ooc=truth.loc[chosen, "ic_ooc"].to_numpy(),
            segment_type=truth.loc[chosen, "segment_type"].to_numpy(),
            character_tag=truth.loc[chosen, "character"].to_numpy(),
        )
        _, after = classify_stretches(classifier.with_corrections(examples, items[0].party), items)
        rest = np.ones(len(truth), dtype=bool)
        rest[chosen] = False
        right_before = (truth["ic_ooc"] == before["ic_ooc"]).to_numpy()
        right_after = (truth["ic_ooc"] == after["ic_ooc"]).to_numpy()
        rows.append(
            {
                "corrections": len(chosen),
                "accuracy_before": float(right_before[rest].mean()),
                "accuracy_after": float(right_after[rest].mean()),
                "broken": int((right_before & ~right_after & rest).sum()),
                "fixed_elsewhere": int((~right_before & right_after & rest).sum()),
                "corrected_now_right": float(right_after[chosen].mean()),
            }
        )
    return pd.DataFrame(rows)
