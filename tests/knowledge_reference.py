"""Scoring a knowledge base against a reference list of NPCs and places (the demo's, CRD3 episodes')."""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from livereview.stages.knowledge import Knowledge, normalize

#: The reference lists and the turns of their three episodes (copied from ``shared/data/crd3-dev``).
CRD3_REFERENCES = Path(__file__).resolve().parent / "data" / "crd3"


def write_episode_transcript(episode: str, path: Path) -> Path:
    """The turns of one CRD3 episode as a transcript (JSON lines with ``text`` and ``speaker``)."""
    rows = []
    with gzip.open(CRD3_REFERENCES / "turns.jsonl.gz", "rt", encoding="utf-8") as stream:
        for line in stream:
            turn = json.loads(line)
            if turn["episode"] == episode:
                speaker = turn["speakers"][0].title() if len(turn["speakers"]) == 1 else "Everyone"
                rows.append(
                    {
                        "segment_id": f"{episode}-{turn['turn']:05d}",
                        "speaker": speaker,
                        "text": turn["text"],
                        "start": float(turn["turn"]),
                        "end": float(turn["turn"]) + 1.0,
                    }
                )
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


@dataclass
class Score:
    """Recall and precision of one entity type against a reference list."""

    found: list[str]
    missed: list[str]
    correct: list[str]
    wrong: list[str]

    @property
    def recall(self) -> float:
        return len(self.found) / max(len(self.found) + len(self.missed), 1)

    @property
    def precision(self) -> float:
        return len(self.correct) / max(len(self.correct) + len(self.wrong), 1)


def _names(name: str, aliases: list[str] | tuple[str, ...]) -> set[str]:
    return {normalize(n) for n in (name, *aliases)}


def score(knowledge: Knowledge, reference: dict[str, dict[str, list[str]]], kind: str, entity_type: str) -> Score:
    """How well ``knowledge``'s entities of ``entity_type`` find ``reference[kind]`` (``npcs`` or ``places``).

    A reference entry is found when an entity of that type shares a name or alias with it.
    An entity of that type is correct when it names an entry of ``kind``; entities naming an
    ``other`` entry (gods, factions, cover names) count neither way; every other one is wrong.
    """
    entries = {name: _names(name, aliases or []) for name, aliases in reference[kind].items()}
    others = {normalize(n) for n in reference.get("other", [])}
    rows = knowledge.entities[knowledge.entities["type"] == entity_type]
    predicted = {row.name: _names(row.name, row.aliases) for row in rows.itertuples()}
    found = [name for name, names in entries.items() if any(names & p for p in predicted.values())]
    correct, wrong = [], []
    for name, names in predicted.items():
        if any(names & e for e in entries.values()):
            correct.append(name)
        elif not names & others:
            wrong.append(name)
    return Score(found, [n for n in entries if n not in found], correct, wrong)


def frame_of(records: list[dict]) -> pd.DataFrame:
    return pd.DataFrame(records)
