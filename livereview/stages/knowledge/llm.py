"""The knowledge base by an LLM behind an OpenAI-compatible server, in the offline backend's tables.

Lines go to the server in batches, each with an id; the answer names entities (name,
type, aliases) and quests or hooks, each with the ids of the lines that show it
(evidence). Every evidence line becomes a mention (with the character span where the
name or an alias is said, else ``-1``); the names are then merged across batches with
the offline alias rules, so both backends return the same
:class:`~livereview.stages.knowledge.schema.Knowledge`. Evidence ids the batch did not
contain are dropped, and an answer that is not the asked-for JSON raises
:class:`~livereview.stages.chat.LLMAnswerError` naming the batch.

Usage
-----
>>> knowledge = LLMKnowledge.from_spec("llm:http://127.0.0.1:11434/v1:llama3")(frame, party)  # doctest: +SKIP
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import pandas as pd

from livereview.core.party import Party
from livereview.stages.chat import ChatServer, LLMAnswerError, json_content, parse_spec
from livereview.stages.knowledge.aliases import Encoder, build_entities
from livereview.stages.knowledge.extract import RAW_MENTION_COLUMNS, trim_name
from livereview.stages.knowledge.schema import (
    CANDIDATE_COLUMNS,
    ENTITY_TYPES,
    HOOK,
    NAMED,
    QUEST,
    Knowledge,
)

#: The system prompt: what to extract and the answer's shape.
SYSTEM_PROMPT = (
    "You build the knowledge base of a tabletop role-playing game session from its transcript. "
    "List the story's entities: non-player characters (NPC), player characters (PC), places (PLACE), "
    "items (ITEM) and factions (FACTION), with the other names each goes by, and the quests (QUEST) and "
    "open plot hooks (HOOK) the story sets. Cite as evidence the ids of the lines that name or show each. "
    "Leave out the real people at the table and anything said only about the real world. Answer with one "
    'JSON object: {"entities": [{"name": str, "type": "NPC|PC|PLACE|ITEM|FACTION", "aliases": [str], '
    '"evidence": [line id]}], "candidates": [{"kind": "QUEST|HOOK", "text": str, "evidence": [line id]}]}'
)
SEGMENTS_MARKER = "LINES (JSON):"


@dataclass(frozen=True)
class LLMKnowledge:
    """Build a knowledge base by asking an LLM.

    Parameters
    ----------
    server : ChatServer
        The OpenAI-compatible server and model.
    batch_size : int
        Lines per request.
    """

    server: ChatServer
    batch_size: int = 60

    @classmethod
    def from_spec(cls, spec: str, **options: Any) -> LLMKnowledge:
        """From ``"llm:<base_url>:<model>"``."""
        base_url, model = parse_spec(spec, "'llm:<base_url>:<model>', e.g. 'llm:http://127.0.0.1:11434/v1:llama3'")
        return cls(ChatServer(base_url, model), **options)

    def __call__(
        self,
        frame: pd.DataFrame,
        party: Party | None = None,
        *,
        encoder: Encoder | None = None,
        include_ooc: bool = False,
    ) -> Knowledge:
        """The knowledge base of ``frame`` (a segment table with ``segment_id``, ``start``, ``end``,
        ``text``, ``speaker_id``, ``ic_ooc``)."""
        rows = frame.reset_index(drop=True) if "segment_id" in frame.columns else frame.reset_index(names="segment_id")
        rows = rows.assign(segment_id=rows["segment_id"].astype(str))
        by_id = {r["segment_id"]: r for r in rows.to_dict("records")}
        mentions: list[dict[str, Any]] = []
        candidates: list[dict[str, Any]] = []
        with self.server.client() as client:
            for first in range(0, len(rows), self.batch_size):
                batch = rows.iloc[first : first + self.batch_size]
                answer = self._ask(client, batch, party)
                mentions += _mentions(answer.get("entities", []), by_id, set(batch["segment_id"]))
                candidates += _candidates(answer.get("candidates", []), by_id, set(batch["segment_id"]))
        raw = pd.DataFrame(mentions, columns=list(RAW_MENTION_COLUMNS))
        texts = {sid: str(r["text"]) for sid, r in by_id.items()}
        entities, mention_table = build_entities(
            raw, party=party, encoder=encoder, texts=texts, include_ooc=include_ooc
        )
        named = mention_table.groupby("segment_id")["entity_id"].agg(lambda e: tuple(dict.fromkeys(e)))
        for number, candidate in enumerate(candidates, start=1):
            candidate["candidate_id"] = f"{candidate['kind'].lower()}-{number:03d}"
            candidate["entities"] = tuple(
                dict.fromkeys(e for sid in candidate["segment_ids"] for e in named.get(sid, ()))
            )
        return Knowledge(
            entities,
            mention_table,
            pd.DataFrame(candidates, columns=list(CANDIDATE_COLUMNS)),
            {"backend": f"llm:{self.server.model}"},
        )

    def _ask(self, client: Any, batch: pd.DataFrame, party: Party | None) -> dict[str, Any]:
        lines = [
            {
                "id": r["segment_id"],
                "speaker": r["speaker_id"] if isinstance(r["speaker_id"], str) else "unknown",
                "text": str(r["text"]),
            }
            for r in batch.to_dict("records")
        ]
        parts = []
        if party is not None:
            characters = "; ".join(f"{c.name} (player {c.player})" for c in party.characters)
            parts.append(f"Game master: {party.game_master}. Player characters: {characters or 'none'}.")
        parts += [SEGMENTS_MARKER, json.dumps(lines, ensure_ascii=False)]
        messages = [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": "\n".join(parts)}]
        answer = json_content(self.server.complete(client, messages))
        if not isinstance(answer, dict) or not isinstance(answer.get("entities", []), list):
            msg = f"the knowledge answer for lines {lines[0]['id']}..{lines[-1]['id']} is not {{'entities': [...]}}"
            raise LLMAnswerError(msg)
        return answer


def _mentions(items: list[Any], by_id: dict[str, dict[str, Any]], batch: set[str]) -> list[dict[str, Any]]:
    rows = []
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("name"), str) or not item["name"].strip():
            continue
        kind = str(item.get("type", "")).strip().upper()
        aliases = [a for a in item.get("aliases", []) if isinstance(a, str) and a.strip()]
        names = [item["name"].strip(), *aliases]
        for segment_id in dict.fromkeys(str(e) for e in item.get("evidence", [])):
            if segment_id not in batch:
                continue
            row = by_id[segment_id]
            text = str(row["text"])
            found = _find(text, names)
            start, surface = trim_name(text, found[0], found[0] + len(found[1])) if found else (-1, "")
            if not surface:  # not said in the line: an evidence mention without a span
                start, surface = -1, names[0]
            rows.append(
                {
                    "surface": surface,
                    "hint": kind if kind in ENTITY_TYPES else None,
                    "label": None,
                    "segment_id": segment_id,
                    "time": float(row["start"]),
                    "end": float(row["end"]),
                    "speaker": row["speaker_id"] if isinstance(row["speaker_id"], str) else None,
                    "player": None,
                    "start_char": start,
                    "end_char": start + len(surface) if start >= 0 else -1,
                    "kind": NAMED,
                    "source": "llm",
                    "ic_ooc": row["ic_ooc"] if isinstance(row["ic_ooc"], str) else None,
                }
            )
    return rows


def _find(text: str, names: list[str]) -> tuple[int, str] | None:
    for name in sorted(names, key=len, reverse=True):
        match = re.search(rf"(?<!\w){re.escape(name)}(?!\w)", text, re.IGNORECASE)
        if match:
            return match.start(), match.group(0)
    return None


def _candidates(items: list[Any], by_id: dict[str, dict[str, Any]], batch: set[str]) -> list[dict[str, Any]]:
    rows = []
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, dict):
            continue
        kind = str(item.get("kind", "")).strip().upper()
        evidence = [str(e) for e in item.get("evidence", []) if str(e) in batch]
        if kind not in (QUEST, HOOK) or not evidence or not isinstance(item.get("text"), str):
            continue
        first = by_id[evidence[0]]
        rows.append(
            {
                "kind": kind,
                "text": " ".join(item["text"].split()),
                "segment_ids": tuple(evidence),
                "time": float(first["start"]),
                "speaker": first["speaker_id"] if isinstance(first["speaker_id"], str) else None,
            }
        )
    return rows
