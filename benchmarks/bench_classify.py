"""Benchmark the IC/OOC classifiers: real table talk, held-out quality, demo quality and throughput.

Run ``python benchmarks/bench_classify.py [--classifier NAME ...]`` (default: ``default``,
``synthetic`` (the earlier default) and ``keywords``, side by side). For each classifier it
prints, first, on the dev episodes of the labelled Critical Role talk
(``livereview/data/crd3/``, episodes never trained on), at turn and at sentence
granularity, with the campaign's party file and without: IC/OOC macro-F1 (rows labelled
IC or OOC) and over IC/OOC/MIXED, accuracy on combat and on roleplay stretches,
player-character tags right, NPC tags right on game-master lines voicing a named NPC and
their precision. Then the labellers' agreement (Cohen's kappa on the 200 double-labelled
turns) and, for the default classifier, what learning from k = 5, 20, 50 simulated
corrections on the dev sentences does to the lines nobody corrected. Then, on the
held-out split of ``livereview/data/tabletop_utterances.jsonl``
(scenes never seen in training): IC/OOC accuracy and macro-F1, segment-type accuracy and
macro-F1, character-tag accuracy, and how well the confidence separates right from
wrong. When the demo recording's reference exists (``livereview/data/demo/``) it prints
the same on the reference text and speakers. Last, the throughput of classifying every
line of the data file in pipeline-sized chunks (20 segments plus 3 context rows), with
the embedding cache emptied first, and again with it warm: segments per wall-clock
second, and per CPU second used by this process (what one idle core would manage; on a
shared machine the wall-clock figure mostly measures the other load).
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import accuracy_score, f1_score

from livereview.cli.classify import read_transcript, transcript_frame
from livereview.core.party import load_party
from livereview.stages.classify import NEEDS_ATTENTION_THRESHOLD, EmbeddingClassifier, resolve_classifier
from livereview.stages.classify.real_talk import (
    DOUBLE_LABELS,
    classify_stretches,
    correction_curve,
    load_labels,
    score,
    stretches,
)
from livereview.stages.classify.training import load_training_data, table_parties

DEMO_DIR = Path(__file__).resolve().parents[1] / "livereview" / "data" / "demo"
CHUNK, CONTEXT = 20, 3


def expected_tags(data: pd.DataFrame) -> pd.Series:
    """The character tag the labels imply (NPC lines: the NPC)."""
    tags = []
    for row in data.itertuples(index=False):
        if row.segment_type in ("MECHANICS", "TABLE_TALK"):
            tags.append("")
        elif row.segment_type == "DM_NARRATION":
            tags.append("DM")
        elif row.segment_type == "NPC_DIALOGUE":
            tags.append(row.npc)
        else:
            tags.append(row.character)
    return pd.Series(tags, index=data.index)


def report(name: str, truth: pd.DataFrame, predicted: pd.DataFrame) -> None:
    y, p = truth["ic_ooc"], predicted["ic_ooc"]
    t, q = truth["segment_type"], predicted["segment_type"]
    confidence = predicted["ic_ooc_confidence"].to_numpy(dtype=float)
    right = (y == p).to_numpy()
    low = confidence < NEEDS_ATTENTION_THRESHOLD
    bins = np.minimum((confidence * 10).astype(int), 9)
    ece = sum(abs(right[bins == b].mean() - confidence[bins == b].mean()) * (bins == b).mean() for b in np.unique(bins))
    tag_right = truth["character_tag"] == predicted["character_tag"]
    npc = truth["segment_type"] == "NPC_DIALOGUE"
    print(f"  {name} ({len(truth)} segments)")
    print(f"    IC/OOC        accuracy {accuracy_score(y, p):.3f}  macro-F1 {f1_score(y, p, average='macro'):.3f}")
    print(f"    segment type  accuracy {accuracy_score(t, q):.3f}  macro-F1 {f1_score(t, q, average='macro'):.3f}")
    print(f"    character tag accuracy {tag_right.mean():.3f} (NPC lines {tag_right[npc].mean():.3f})")

    def accuracy(rows: np.ndarray) -> str:
        return f"{right[rows].mean():.3f}" if rows.any() else "n/a"

    print(
        f"    confidence    ECE {ece:.3f}; {low.mean():.1%} under {NEEDS_ATTENTION_THRESHOLD} "
        f"(accuracy {accuracy(low)} there, {accuracy(~low)} above)"
    )


def real_talk(classifier, labels: pd.DataFrame) -> None:
    for granularity in ("turn", "sentence"):
        for with_party in (True, False):
            items = list(stretches(labels, granularity=granularity, with_party=with_party))
            f = score(*classify_stretches(classifier, items))
            print(
                f"  real talk, {granularity}s, {'party file' if with_party else 'no party file':13} ({f['rows']:.0f}): "
                f"IC/OOC macro-F1 {f['macro_f1']:.3f} (3 labels {f['macro_f1_3']:.3f}), accuracy combat "
                f"{f['combat_accuracy']:.3f} roleplay {f['roleplay_accuracy']:.3f}; player tags {f['player_tag']:.3f}; "
                f"NPC tags {f['npc_recall']:.3f} of {f['npc_rows']:.0f}, precision {f['npc_precision']:.3f}"
            )


def agreement(labels: pd.DataFrame) -> None:
    from sklearn.metrics import cohen_kappa_score

    second = load_labels(DOUBLE_LABELS)
    first = labels.set_index(["episode", "turn"]).loc[list(zip(second["episode"], second["turn"], strict=True))]
    pieces = [(a["ic_ooc"], b["ic_ooc"]) for x, y in zip(first["sentences"], second["sentences"], strict=True)
              for a, b in zip(x, y, strict=True)]  # fmt: skip
    print(
        f"labellers' agreement on {len(second)} turns: Cohen's kappa IC/OOC/MIXED per turn "
        f"{cohen_kappa_score(first['ic_ooc'], second['ic_ooc']):.3f}, per sentence "
        f"{cohen_kappa_score(*zip(*pieces, strict=True)):.3f} ({len(pieces)} sentences)"
    )


def corrections(classifier, labels: pd.DataFrame) -> None:
    items = list(stretches(labels, granularity="sentence", with_party=False))
    for row in correction_curve(classifier, items).itertuples(index=False):
        print(
            f"  {row.corrections:2d} corrections: accuracy on the other lines {row.accuracy_before:.3f} -> "
            f"{row.accuracy_after:.3f} ({row.broken} right lines broken, {row.fixed_elsewhere} fixed); "
            f"corrected lines now right {row.corrected_now_right:.2f}"
        )


def heldout(classifier, data: pd.DataFrame) -> pd.DataFrame:
    parties = table_parties(data)
    rows = data[data["split"] == "heldout"]
    out = [
        classifier(scene.sort_values("order"), parties[scene["table"].iloc[0]])
        for _, scene in rows.groupby("scene", sort=False)
    ]
    return pd.concat(out).loc[rows.index]


def demo(classifier) -> tuple[pd.DataFrame, pd.DataFrame] | None:
    reference, party_file = DEMO_DIR / "demo_session.jsonl", DEMO_DIR / "party.yaml"
    if not reference.is_file() or not party_file.is_file():
        return None
    party = load_party(party_file)
    records = read_transcript(reference)
    frame = transcript_frame(records, party)
    truth = pd.DataFrame(records)
    return truth, classifier(frame, party).reset_index(drop=True)


def throughput(classifier, data: pd.DataFrame) -> list[tuple[float, float]]:
    """Segments per wall-clock second and per CPU second of this process: new texts, then cached."""
    parties = table_parties(data)
    frame = data.sort_values(["scene", "order"]).reset_index(drop=True)
    party = parties[frame["table"].iloc[0]]
    if isinstance(classifier, EmbeddingClassifier):
        classifier.encoder._cache.clear()
    rates = []
    for _ in range(2):
        wall, cpu = time.perf_counter(), time.process_time()
        for start in range(0, len(frame), CHUNK):
            classifier(frame.iloc[max(0, start - CONTEXT) : start + CHUNK], party)
        rates.append((len(frame) / (time.perf_counter() - wall), len(frame) / (time.process_time() - cpu)))
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--classifier", action="append", help="classifier spec (repeatable; default: default, synthetic, keywords)"
    )
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    data = load_training_data()
    data["character_tag"] = expected_tags(data)
    print(
        f"data: {len(data)} lines, {int((data['split'] == 'heldout').sum())} held out; "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}"
    )
    labels = load_labels()
    agreement(labels)
    for spec in args.classifier or ["default", "synthetic", "keywords"]:
        started = time.perf_counter()
        classifier = resolve_classifier(spec)
        print(f"\n{getattr(classifier, 'name', spec)} (ready in {time.perf_counter() - started:.1f} s)")
        real_talk(classifier, labels)
        if isinstance(classifier, EmbeddingClassifier):
            corrections(classifier, labels)
        report("held-out scenes", data[data["split"] == "heldout"], heldout(classifier, data))
        labelled = demo(classifier)
        if labelled is not None:
            report("demo reference", *labelled)
        (cold, cold_cpu), (warm, warm_cpu) = throughput(classifier, data)
        print(
            f"  throughput    new texts {cold:.0f} segments/s ({cold_cpu:.0f} per CPU second), "
            f"cached texts {warm:.0f} segments/s ({warm_cpu:.0f} per CPU second)"
        )


if __name__ == "__main__":
    main()
