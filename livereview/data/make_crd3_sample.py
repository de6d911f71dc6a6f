"""Pick the Critical Role stretches to label, and split their turns into sentences.

Run ``python -m livereview.data.make_crd3_sample select CRD3_TURNS.jsonl.gz WORK_DIR`` to
write, for each episode in :data:`EPISODES`, ``WORK_DIR/<episode>.jsonl``: the turns of a
rules-dense and of a rules-light stretch (:data:`STRETCH` consecutive turns each), every
turn with its sentence-length pieces as a transcription model would cut them. The
selection is deterministic. The labellers, following the guide in ``crd3/README.md``,
write one line per turn into ``LABEL_DIR/<episode>.jsonl`` (``episode``, ``turn``,
``scene`` and one ``ic_ooc``/``segment_type``/``character`` per piece), and the second
labelling into ``LABEL_DIR/double.jsonl``; ``python -m livereview.data.make_crd3_sample
assemble WORK_DIR LABEL_DIR`` then writes ``crd3/crd3_labels.jsonl`` and
``crd3/crd3_double.jsonl``, deriving each turn's label from its pieces (:func:`turn_label`).
"""

from __future__ import annotations

import gzip
import json
import re
import sys
from pathlib import Path
from typing import Any

#: Labelled episodes: eight of campaign 1, four of campaign 2.
EPISODES = (
    "C1E002", "C1E004", "C1E006", "C1E009", "C1E013", "C1E016", "C1E018", "C1E020",
    "C2E002", "C2E004", "C2E006", "C2E008",
)  # fmt: skip
#: Episodes held out for measuring (the rest train): two per campaign.
DEV_EPISODES = frozenset({"C1E016", "C1E020", "C2E006", "C2E008"})
STRETCH = 85
#: Words that mark rules and fighting; a stretch dense in them is a combat stretch.
COMBAT_WORDS = re.compile(
    r"\b(initiative|damage|attacks?|hits?|AC|rolls?|rolled|d20|d\d+|hit points|saving throw|round|turn|"
    r"advantage|spell slot|concentration|crit(ical)?|misses?)\b",
    re.IGNORECASE,
)
OUTPUT_DIR = Path(__file__).with_name("crd3")
SENTENCE_END = re.compile(r"(?:(?<=[.!?])|(?<=[.!?][\"')\]]))\s+(?=[\"'(]?[A-Z0-9])|(?<=--)\s+(?=[\"'(]?[A-Z])")


def split_sentences(text: str) -> list[str]:
    """Cut a turn into sentence-length pieces (at ``.``, ``!``, ``?`` and a dash break)."""
    return [piece.strip() for piece in SENTENCE_END.split(text) if piece and piece.strip()]


def combat_density(turns: list[dict[str, Any]], start: int) -> float:
    window = turns[start : start + STRETCH]
    return sum(len(COMBAT_WORDS.findall(t["text"])) for t in window) / sum(len(t["text"]) + 1 for t in window)


def pick_stretches(turns: list[dict[str, Any]]) -> dict[str, int]:
    """First turn index of the combat and of the roleplay stretch, not overlapping.

    The opening tenth (announcements, recap) and the last twentieth are left out; the
    roleplay stretch is the least rules-dense window at least one stretch away from the
    combat one.
    """
    starts = range(len(turns) // 10, len(turns) - len(turns) // 20 - STRETCH, 5)
    density = {start: combat_density(turns, start) for start in starts}
    combat = max(density, key=density.__getitem__)
    apart = {s: d for s, d in density.items() if abs(s - combat) >= 2 * STRETCH}
    return {"combat": combat, "roleplay": min(apart, key=apart.__getitem__)}


def turn_label(pieces: list[dict[str, str]], texts: list[str]) -> dict[str, str]:
    """A turn's label from its pieces': MIXED when they disagree, the type of the longest piece,
    and the character of its longest in-character piece ("" when none is)."""
    labels = {piece["ic_ooc"] for piece in pieces}
    longest = max(range(len(pieces)), key=lambda i: len(texts[i]))
    in_character = [i for i, piece in enumerate(pieces) if piece["ic_ooc"] == "IC"]
    speaking = max(in_character, key=lambda i: len(texts[i])) if in_character else None
    return {
        "ic_ooc": labels.pop() if len(labels) == 1 else "MIXED",
        "segment_type": pieces[longest]["segment_type"],
        "character": pieces[speaking]["character"] if speaking is not None else "",
    }


def labelled(turn: dict[str, Any], labels: dict[str, Any]) -> dict[str, Any]:
    """One shipped record: the turn, its split, scene and label, and each piece with its label."""
    if len(labels["sentences"]) != len(turn["sentences"]):
        found, wanted = len(labels["sentences"]), len(turn["sentences"])
        msg = f"{turn['episode']} turn {turn['turn']}: {found} labels for {wanted} pieces"
        raise ValueError(msg)
    pieces = [{"text": text, **label} for text, label in zip(turn["sentences"], labels["sentences"], strict=True)]
    return {
        "episode": turn["episode"],
        "turn": turn["turn"],
        "speakers": turn["speakers"],
        "text": turn["text"],
        "split": "dev" if turn["episode"] in DEV_EPISODES else "train",
        "stretch": turn["stretch"],
        "scene": labels["scene"],
        **turn_label(labels["sentences"], turn["sentences"]),
        "sentences": pieces,
    }


def assemble(work_dir: Path, label_dir: Path) -> None:
    """Write the shipped label files from the selected turns and the labellers' files."""
    turns = {
        (t["episode"], t["turn"]): t
        for episode in EPISODES
        for t in map(json.loads, (work_dir / f"{episode}.jsonl").read_text(encoding="utf-8").splitlines())
    }
    for source, target in ((EPISODES, "crd3_labels.jsonl"), (("double",), "crd3_double.jsonl")):
        with (OUTPUT_DIR / target).open("w", encoding="utf-8") as out:
            for name in source:
                for line in (label_dir / f"{name}.jsonl").read_text(encoding="utf-8").splitlines():
                    labels = json.loads(line)
                    record = labelled(turns[labels["episode"], labels["turn"]], labels)
                    out.write(json.dumps(record, ensure_ascii=False) + "\n")


def select(source: Path, out_dir: Path) -> None:
    by_episode: dict[str, list[dict[str, Any]]] = {}
    with gzip.open(source, "rt", encoding="utf-8") as lines:
        for line in lines:
            turn = json.loads(line)
            if turn["episode"] in EPISODES:
                by_episode.setdefault(turn["episode"], []).append(turn)
    out_dir.mkdir(parents=True, exist_ok=True)
    for episode in EPISODES:
        turns = sorted(by_episode[episode], key=lambda t: t["turn"])
        with (out_dir / f"{episode}.jsonl").open("w", encoding="utf-8") as out:
            for stretch, start in pick_stretches(turns).items():
                for turn in turns[start : start + STRETCH]:
                    record = {**turn, "stretch": stretch, "sentences": split_sentences(turn["text"])}
                    out.write(json.dumps(record, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    {"select": select, "assemble": assemble}[sys.argv[1]](Path(sys.argv[2]), Path(sys.argv[3]))
