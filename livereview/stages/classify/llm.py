"""Optional classifier backed by an LLM behind an OpenAI-compatible chat-completions API.

Works with any server speaking ``POST <base_url>/chat/completions`` (Ollama, the
llama.cpp server, vLLM, hosted APIs). Segments go in batches; each answer must be JSON
with one object per segment. When the server is absent, times out, fails after retries or
answers something that does not validate, the affected rows come from the fallback
classifier (the default embedding classifier unless told otherwise), a warning is
logged, and the ``classifier`` column names whichever produced each row.

Usage
-----
>>> classify = LLMClassifier("http://127.0.0.1:11434/v1", "llama3", prompt_variant="terse")
>>> classify.name
'llm:llama3:terse'
>>> labels = classify(frame, party)  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
import numpy as np
import pandas as pd

from livereview.core.party import Party
from livereview.core.segments import IC_OOC_LABELS, SEGMENT_TYPES
from livereview.stages.chat import ChatServer, LLMAnswerError, LLMUnavailableError, json_content, parse_spec
from livereview.stages.classify.builtin import resolve_offline_classifier
from livereview.stages.classify.labels import CLASSIFICATION_COLUMNS, Classifier
from livereview.stages.classify.tags import character_tags

logger = logging.getLogger(__name__)

_DEFINITIONS = """\
Labels:
- ic_ooc: "IC" when the line is spoken in the fiction (narration, a character or NPC talking \
or acting), "OOC" when it is about the game or real life (dice, rules, turn order, food, \
jokes, scheduling), "MIXED" when one line does both.
- segment_type: "DM_NARRATION" (the game master describing the world), "NPC_DIALOGUE" \
(the game master speaking as a non-player character), "CHARACTER_SPEECH" (a player speaking \
as their character), "CHARACTER_ACTION" (a player saying what their character does), \
"MECHANICS" (dice results, checks, rules, turn order), "TABLE_TALK" (anything else out of \
the game).
- character: the player character speaking or acting; for NPC dialogue the NPC's name if \
the text tells it, else "NPC"; "DM" for narration; "" for table talk.
- confidence: your probability, from 0 to 1, that ic_ooc is right."""

#: Named system prompts; the variant is recorded in the classifier name so runs compare.
PROMPT_VARIANTS: dict[str, str] = {
    "default": (
        "You label transcribed lines of a tabletop role-playing game session recorded at the "
        "table. The game master runs the world and voices every non-player character; each "
        "player voices one player character. Speech recognition drops quotation marks, so "
        "decide from wording and context.\n\n" + _DEFINITIONS + "\n\nExamples: 'The door "
        "creaks open onto a flooded crypt.' (game master) -> IC, DM_NARRATION. 'I rolled a "
        "fourteen, does that hit?' (player) -> OOC, MECHANICS. 'Stay behind me, and I'm "
        "rolling stealth for that.' (player) -> MIXED, CHARACTER_SPEECH. 'Who wants more "
        "pizza?' -> OOC, TABLE_TALK.\n\nAnswer with one JSON object and nothing else."
    ),
    "terse": ("Label each tabletop RPG transcript line. " + _DEFINITIONS + "\nReply with JSON only."),
}

_ANSWER_SHAPE = (
    '{"segments": [{"id": "<id>", "ic_ooc": "IC|OOC|MIXED", "segment_type": "<type>", '
    '"character": "<name>", "confidence": <0..1>}]}'
)
#: Line that precedes the JSON list of segments to label in the user message.
SEGMENTS_MARKER = "SEGMENTS TO LABEL (JSON):"
CONTEXT_MARKER = "EARLIER LINES, CONTEXT ONLY (JSON):"
EXAMPLES_MARKER = "LINES AN OPERATOR LABELLED IN THIS SESSION, FOLLOW THEM (JSON):"
#: Most operator corrections sent with each request (the latest ones).
MAX_EXAMPLES = 20
_OOC_TYPES = ("MECHANICS", "TABLE_TALK")
_SPEC_HELP = "'llm:<base_url>:<model>[:<prompt variant>]', e.g. 'llm:http://127.0.0.1:11434/v1:llama3:terse'"


@dataclass(frozen=True)
class LLMClassifier:
    """Classify segments by asking an LLM, falling back to another classifier on failure.

    Parameters
    ----------
    base_url : str
        The API root, e.g. ``http://127.0.0.1:11434/v1`` (Ollama) or
        ``http://127.0.0.1:8080/v1`` (llama.cpp server).
    model : str
        The model name the server knows.
    prompt_variant : str
        A key of :data:`PROMPT_VARIANTS`.
    batch_size : int
        Segments per request.
    timeout : float
        Seconds to wait for connecting and for each read.
    retries : int
        Extra attempts after a connection error, a timeout or a 408/429/5xx answer.
    api_key : str, optional
        Sent as a bearer token.
    backoff : float
        Seconds before the first retry; doubles after each.
    context_lines : int
        Earlier lines sent with each batch as context (not labelled).
    fallback : str, callable or None
        The classifier for rows the LLM could not label (see
        :func:`~livereview.stages.classify.builtin.resolve_offline_classifier`: ``"keywords"``, a
        callable, or ``None`` for the default classifier).
    json_mode : bool
        Ask for ``response_format: json_object`` (supported by Ollama, llama.cpp, vLLM).
    retry_after : float
        Seconds during which, once the server was found unavailable, calls go straight
        to the fallback instead of waiting for connection errors again.
    examples : tuple of dict
        Lines an operator labelled (``speaker``, ``role``, ``text``, ``ic_ooc``,
        ``character``), sent with every request; see :meth:`with_corrections`.
    """

    base_url: str
    model: str
    prompt_variant: str = "default"
    batch_size: int = 20
    timeout: float = 60.0
    retries: int = 2
    api_key: str | None = None
    backoff: float = 0.5
    context_lines: int = 3
    fallback: str | Classifier | None = None
    json_mode: bool = True
    retry_after: float = 30.0
    examples: tuple[dict[str, str], ...] = ()
    _unavailable_until: list[float] = field(default_factory=lambda: [0.0], init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.prompt_variant not in PROMPT_VARIANTS:
            msg = f"unknown prompt variant {self.prompt_variant!r}; choose one of {', '.join(PROMPT_VARIANTS)}"
            raise ValueError(msg)
        if self.batch_size < 1 or self.retries < 0 or self.timeout <= 0:
            msg = (
                f"batch_size must be >= 1, retries >= 0 and timeout > 0; got batch_size="
                f"{self.batch_size}, retries={self.retries}, timeout={self.timeout}"
            )
            raise ValueError(msg)

    @classmethod
    def from_spec(cls, spec: str, **options: Any) -> LLMClassifier:
        """Build from ``"llm:<base_url>:<model>[:<prompt variant>]"``.

        The last ``:``-part is taken as the variant only when it names one, so model
        names with a tag (``llama3:8b``) work: ``llm:http://host:11434/v1:llama3:8b:terse``.
        """
        base_url, model = parse_spec(spec, _SPEC_HELP)
        variant = "default"
        head, _, tail = model.rpartition(":")
        if head and tail in PROMPT_VARIANTS:
            model, variant = head, tail
        return cls(base_url, model, prompt_variant=variant, **options)

    @property
    def name(self) -> str:
        """``llm:<model>:<prompt variant>[+Ncorrections]``, written to the ``classifier`` column."""
        taught = f"+{len(self.examples)}corrections" if self.examples else ""
        return f"llm:{self.model}:{self.prompt_variant}{taught}"

    def with_corrections(self, examples: pd.DataFrame, party: Party | None = None) -> LLMClassifier:
        """The same classifier, sending the operator's latest corrections as labelled examples.

        ``examples`` has one corrected segment per row (``text``, ``player`` or
        ``speaker_id``, ``is_game_master``, ``ic_ooc``, ``character_tag``; None where
        not corrected), as :func:`livereview.review.reclassify.correction_examples` builds it.
        """
        shown = []
        for position in range(max(0, len(examples) - MAX_EXAMPLES), len(examples)):
            row = examples.iloc[position]
            labels = {"ic_ooc": row["ic_ooc"], "character": row["character_tag"]}
            shown.append(_line(examples, position, party) | {k: v for k, v in labels.items() if isinstance(v, str)})
        return dataclasses.replace(self, examples=(*self.examples, *shown)[-MAX_EXAMPLES:])

    @property
    def spec(self) -> str:
        """The string :meth:`from_spec` (and ``resolve_classifier``) turns back into this server and prompt."""
        return f"llm:{self.base_url}:{self.model}:{self.prompt_variant}"

    def __call__(self, frame: pd.DataFrame, party: Party | None = None) -> pd.DataFrame:
        if frame.empty:
            return pd.DataFrame(columns=list(CLASSIFICATION_COLUMNS), index=frame.index)
        answers: dict[int, dict[str, Any]] = {}
        reachable = time.monotonic() >= self._unavailable_until[0]
        if not reachable:
            logger.info("LLM server %s was unavailable moments ago; using the fallback", self.base_url)
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        with httpx.Client(timeout=self.timeout, headers=headers) as client:
            for start in range(0, len(frame), self.batch_size):
                if not reachable:
                    break
                positions = list(range(start, min(start + self.batch_size, len(frame))))
                try:
                    answers.update(self._label_batch(client, frame, positions, party))
                except LLMUnavailableError as error:
                    reachable = False
                    self._unavailable_until[0] = time.monotonic() + self.retry_after
                    logger.warning(
                        "LLM server %s unavailable (%s); the remaining %d segments, and the next %.0f s "
                        "of calls, use the fallback",
                        self.base_url,
                        error,
                        len(frame) - start,
                        self.retry_after,
                    )
                except LLMAnswerError as error:
                    logger.warning(
                        "LLM %s gave an unusable answer for %d segments (%s); they use the fallback",
                        self.name,
                        len(positions),
                        error,
                    )
        return self._assemble(frame, party, answers)

    # -- one batch

    def _label_batch(
        self, client: httpx.Client, frame: pd.DataFrame, positions: list[int], party: Party | None
    ) -> dict[int, dict[str, Any]]:
        content = self._complete(client, self.messages(frame, positions, party))
        items = parse_answer(content)
        wanted = {f"s{p}": p for p in positions}
        answers = {}
        problems = []
        for item in items:
            position = wanted.get(str(item.get("id")))
            if position is None:
                continue
            try:
                answers[position] = validate_item(item)
            except LLMAnswerError as error:
                problems.append(f"{item.get('id')}: {error}")
        missing = len(positions) - len(answers)
        if missing == len(positions):
            msg = f"no valid segment in the answer ({'; '.join(problems) or 'ids did not match'})"
            raise LLMAnswerError(msg)
        if missing:
            logger.warning(
                "LLM %s left %d of %d segments unlabelled; they use the fallback", self.name, missing, len(positions)
            )
        return answers

    def messages(self, frame: pd.DataFrame, positions: Sequence[int], party: Party | None) -> list[dict[str, str]]:
        """The chat messages for the rows at ``positions`` (with a few earlier rows as context)."""
        first = positions[0]
        context = [_line(frame, p, party) for p in range(max(0, first - self.context_lines), first)]
        lines = [{"id": f"s{p}", **_line(frame, p, party)} for p in positions]
        parts = []
        if party is not None:
            characters = "; ".join(
                f"{c.name} (played by {c.player}" + (f", also called {', '.join(c.aliases)})" if c.aliases else ")")
                for c in party.characters
            )
            parts.append(f"Game master: {party.game_master}. Player characters: {characters or 'none'}.")
            if party.npcs:
                npcs = "; ".join(
                    n.name + (f" (also called {', '.join(n.aliases)})" if n.aliases else "") for n in party.npcs
                )
                parts.append(f"Known non-player characters, voiced by the game master: {npcs}.")
        if self.examples:
            parts += [EXAMPLES_MARKER, json.dumps(list(self.examples), ensure_ascii=False)]
        if context:
            parts += [CONTEXT_MARKER, json.dumps(context, ensure_ascii=False)]
        parts += [SEGMENTS_MARKER, json.dumps(lines, ensure_ascii=False)]
        parts.append(f"Answer with JSON shaped like {_ANSWER_SHAPE}, one object per id.")
        return [
            {"role": "system", "content": PROMPT_VARIANTS[self.prompt_variant]},
            {"role": "user", "content": "\n".join(parts)},
        ]

    def _complete(self, client: httpx.Client, messages: list[dict[str, str]]) -> str:
        """POST the chat completion with retries; the answer's message content."""
        server = ChatServer(
            self.base_url, self.model, self.timeout, self.retries, self.backoff, self.api_key, self.json_mode
        )
        return server.complete(client, messages)

    # -- assembling the table

    def _assemble(self, frame: pd.DataFrame, party: Party | None, answers: dict[int, dict[str, Any]]) -> pd.DataFrame:
        result = pd.DataFrame(index=frame.index, columns=list(CLASSIFICATION_COLUMNS), dtype=object)
        if answers:
            positions = sorted(answers)
            types = [answers[p]["segment_type"] if p in answers else "TABLE_TALK" for p in range(len(frame))]
            guesses = [answers[p]["character"] if p in answers else None for p in range(len(frame))]
            tags = character_tags(frame, types, party, guesses)
            # A player the party does not know keeps the character the LLM named.
            tags = [
                guess if tag == "" and guess and kind not in _OOC_TYPES else tag
                for tag, guess, kind in zip(tags, guesses, types, strict=True)
            ]
            result.iloc[positions, 0] = [answers[p]["ic_ooc"] for p in positions]
            result.iloc[positions, 1] = [answers[p]["confidence"] for p in positions]
            result.iloc[positions, 2] = [types[p] for p in positions]
            result.iloc[positions, 3] = [tags[p] for p in positions]
            result.iloc[positions, 4] = self.name
        missing = [p for p in range(len(frame)) if p not in answers]
        if missing:
            fallback = resolve_offline_classifier(self.fallback)
            # The fallback sees the whole frame so its rows keep their neighbours.
            result.iloc[missing] = fallback(frame, party).iloc[missing][list(CLASSIFICATION_COLUMNS)].to_numpy()
        result["ic_ooc_confidence"] = result["ic_ooc_confidence"].astype(float)
        return result


def _line(frame: pd.DataFrame, position: int, party: Party | None) -> dict[str, str]:
    """Speaker, role and text of one row, as the prompt shows them."""
    row = frame.iloc[position]
    player = row.get("player")
    speaker = player if isinstance(player, str) else row.get("speaker_id")
    flag = row.get("is_game_master")
    if isinstance(flag, (bool, np.bool_)):
        role = "game master" if flag else "player"
    elif party is not None and isinstance(player, str):
        role = "game master" if party.is_game_master(player) else "player"
    else:
        role = "unknown"
    return {"speaker": speaker if isinstance(speaker, str) else "unknown", "role": role, "text": str(row["text"])}


def parse_answer(content: str) -> list[dict[str, Any]]:
    """The list of per-segment objects in an LLM answer.

    Accepts ``{"segments": [...]}``, a bare list, or either inside a Markdown code fence.

    Raises
    ------
    LLMAnswerError
        When the content is not JSON of one of those shapes.
    """
    data = json_content(content)
    if isinstance(data, dict):
        data = data.get("segments")
    if not isinstance(data, list) or not all(isinstance(item, dict) for item in data):
        msg = f"answer must be {_ANSWER_SHAPE}; got {content[:120]!r}"
        raise LLMAnswerError(msg)
    return data


def _label(value: Any, allowed: Sequence[str], field: str) -> str:
    label = re.sub(r"[\s-]+", "_", str(value).strip()).upper()
    if label not in allowed:
        msg = f"{field} {value!r} is not one of {', '.join(allowed)}"
        raise LLMAnswerError(msg)
    return label


def validate_item(item: dict[str, Any]) -> dict[str, Any]:
    """Normalise one answered segment: labels upper-cased, confidence a float in [0, 1].

    Raises
    ------
    LLMAnswerError
        On an unknown label or a confidence that is not a number in [0, 1].
    """
    confidence = item.get("confidence", 0.5)
    if isinstance(confidence, bool) or not isinstance(confidence, (int, float)) or not 0 <= confidence <= 1:
        msg = f"confidence {confidence!r} is not a number from 0 to 1"
        raise LLMAnswerError(msg)
    character = item.get("character")
    named = isinstance(character, str) and character.strip() not in ("", "NPC", "DM")
    return {
        "ic_ooc": _label(item.get("ic_ooc"), IC_OOC_LABELS, "ic_ooc"),
        "segment_type": _label(item.get("segment_type"), SEGMENT_TYPES, "segment_type"),
        "confidence": float(confidence),
        "character": character.strip() if named else None,
    }
