"""Scenes: where a session's story moves on, found in its segment table.

A scene is a stretch of the session: a run of in-character play, or an out-of-character
break (pre-game and wrap-up talk, a pizza break). :func:`find_scenes` places the
boundaries from four kinds of evidence over the time-ordered segments:

- **breaks**: a run of out-of-character segments, mostly table talk rather than dice and
  rules, lasting at least ``break_seconds`` (and any out-of-character talk before the first
  or after the last in-character line) is a scene of its own;
- **narration cues**: the game master's narration opening with a move in time or place
  ("Next morning, you climb...", "When you reach the gate..."), and a call for initiative,
  which starts a fight at the narration that led to it;
- **topic shifts**: the depth of the dip in similarity between the sentence embeddings
  (all-MiniLM-L6-v2) of the segments before and after each gap, as in TextTiling;
- **pauses**: long silences.

Breaks and cues always split; topic shifts and pauses split where their score is high
enough and no other boundary is within ``min_scene_seconds``. Each scene gets its
segments, speakers, characters, in-character share and a short extractive summary
(the most central lines, game-master narration first), or one written by a summarizer
callable (:func:`llm_summarizer` for an OpenAI-compatible server).

Usage
-----
>>> scenes = find_scenes(frame)                        # doctest: +SKIP
>>> scenes[["start", "end", "kind", "summary"]]        # doctest: +SKIP
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from livereview.core.segments import IC, MIXED, OOC
from livereview.stages.classify.labels import UNNAMED_TAGS

#: Segment-table columns :func:`find_scenes` reads (all in the merged view).
SCENE_INPUT_COLUMNS = ("segment_id", "start", "end", "text", "speaker_id", "ic_ooc", "segment_type", "character_tag")

#: Columns of the scene table, in order.
SCENE_COLUMNS = (
    "scene_id",
    "kind",
    "start",
    "end",
    "segment_ids",
    "speakers",
    "characters",
    "ic_share",
    "cue",
    "summary",
)
#: Scene kinds.
PLAY, BREAK = "play", "break"

#: Segment types that are dice and rules: out of character, but part of play.
_MECHANICS = "MECHANICS"

_TRANSITION = re.compile(
    r"^\W*(?:"
    r"(?:the\s+)?(?:next|following)\s+(?:morning|day|night|evening|dawn|week)"
    r"|(?:later|meanwhile|eventually|hours\s+later|days\s+later|that\s+(?:night|evening|morning))"
    r"|(?:at|by)\s+(?:dawn|dusk|nightfall|sunrise|sunset|midday|noon)"
    r"|(?:after|once)\s+(?:a|an|the|some|several|your|a\s+long|a\s+short)?\s*"
    r"(?:hours?|days?|nights?|while|rest|long\s+rest|short\s+rest|travel|journey)"
    r"|(?:as|when|once)\s+you\s+(?:arrive|reach|enter|get\s+to|return|approach|step|leave|make\s+your\s+way)"
    r"|you\s+(?:arrive|reach|enter|climb|make\s+your\s+way|head|travel|set\s+out|leave|return|descend|step)"
    r")\b",
    re.IGNORECASE,
)
#: A call for initiative starts a fight ("role" is how speech recognition often hears "roll").
_INITIATIVE = re.compile(r"\b(?:roll|rolls|rolling|role)\s+(?:for\s+|your\s+)?initiative\b", re.IGNORECASE)


@dataclass(frozen=True)
class SceneOptions:
    """How :func:`find_scenes` places boundaries.

    Attributes
    ----------
    min_scene_seconds : float
        A topic shift or pause closer than this to another boundary does not split.
    break_seconds : float
        Out-of-character table talk lasting this long is a break of its own.
    window : int
        Segments on each side of a gap whose embeddings are compared.
    shift_threshold : float
        Topic-shift score (depth in standard deviations, plus the pause's share) above
        which a gap splits.
    pause_seconds : float
        A silence this long counts fully in the score.
    summary_lines : int
        Lines in an extractive summary.
    summary_chars : int
        Longest summary, in characters.
    """

    min_scene_seconds: float = 20.0
    break_seconds: float = 10.0
    window: int = 4
    shift_threshold: float = 2.5
    pause_seconds: float = 6.0
    summary_lines: int = 2
    summary_chars: int = 240

    def __post_init__(self) -> None:
        if self.window < 1 or self.summary_lines < 1 or min(self.min_scene_seconds, self.break_seconds) < 0:
            msg = f"window and summary_lines must be >= 1, min_scene_seconds and break_seconds >= 0; got {self}"
            raise ValueError(msg)


Encoder = Callable[[Sequence[str]], np.ndarray]
Summarizer = Callable[[pd.DataFrame], str]


def find_scenes(
    frame: pd.DataFrame,
    *,
    encoder: Encoder | None = None,
    game_master: Sequence[str] = (),
    options: SceneOptions | None = None,
    summarizer: Summarizer | None = None,
) -> pd.DataFrame:
    """Split a session's segments into scenes.

    Parameters
    ----------
    frame : pandas.DataFrame
        Segments with the :data:`SCENE_INPUT_COLUMNS` (the merged view, so corrections count).
    encoder : callable, optional
        ``encoder(texts) -> (n, d)`` unit-norm embeddings; the offline MiniLM encoder by default.
    game_master : sequence of str
        Speaker ids of the game master (narration cues count only in their lines; with
        none given, every in-character narration line counts).
    options : SceneOptions, optional
    summarizer : callable, optional
        ``summarizer(scene_segments) -> str``; the extractive summary when None.

    Returns
    -------
    pandas.DataFrame
        One row per scene, in time order, with :data:`SCENE_COLUMNS`: ``scene_id``
        (``scene-001``...), ``kind`` (:data:`PLAY` or :data:`BREAK`), ``start``/``end``
        (seconds), ``segment_ids``, ``speakers`` and ``characters`` (tuples),
        ``ic_share`` (in-character share of the speech, MIXED counting half), ``cue``
        (what opened the scene: ``start``, ``break``, ``resume``, ``transition``,
        ``initiative``, ``shift``) and ``summary``.
    """
    options = options or SceneOptions()
    missing = [c for c in SCENE_INPUT_COLUMNS if c not in frame.columns and c != "segment_id"]
    if missing:
        msg = f"scenes need the segment columns {missing}; pass the merged view (session.view())"
        raise ValueError(msg)
    rows = _ordered(frame)
    if rows.empty:
        return pd.DataFrame(columns=list(SCENE_COLUMNS))
    texts = rows["text"].fillna("").astype(str).tolist()
    embeddings = (encoder or _default_encoder())(texts)
    cuts = _boundaries(rows, embeddings, set(game_master), options)
    return _scene_table(rows, embeddings, cuts, options, summarizer)


def _default_encoder() -> Encoder:
    from livereview.stages.classify.features import load_encoder

    return load_encoder()


def _ordered(frame: pd.DataFrame) -> pd.DataFrame:
    rows = frame.reset_index(drop=True) if "segment_id" in frame.columns else frame.reset_index(names="segment_id")
    rows = rows.sort_values(["start", "end", "segment_id"], kind="stable").reset_index(drop=True)
    for column in ("ic_ooc", "segment_type", "character_tag", "speaker_id"):
        rows[column] = rows[column].astype(object).where(rows[column].notna(), None)
    return rows


def _boundaries(
    rows: pd.DataFrame, embeddings: np.ndarray, game_master: set[str], options: SceneOptions
) -> dict[int, str]:
    """Position of each scene's first segment -> the cue that opened it."""
    cuts: dict[int, str] = {0: "start"}
    in_break = _break_mask(rows, options)
    for position in range(1, len(rows)):
        if in_break[position] and not in_break[position - 1]:
            cuts[position] = "break"
        elif in_break[position - 1] and not in_break[position]:
            cuts[position] = "resume"
    narrator = _narration_mask(rows, game_master)
    for position, text in enumerate(rows["text"].fillna("").astype(str)):
        if in_break[position]:
            continue
        if narrator[position] and _TRANSITION.search(text):
            cuts.setdefault(position, "transition")
        elif _INITIATIVE.search(text):
            first = position
            while first > 0 and narrator[first - 1] and not in_break[first - 1]:
                first -= 1
            cuts.setdefault(first, "initiative")
    starts = rows["start"].to_numpy(float)
    for position in _shifts(rows, embeddings, options):
        near = min(abs(starts[position] - starts[c]) for c in cuts)
        if near >= options.min_scene_seconds and not in_break[position] and not in_break[position - 1]:
            cuts[position] = "shift"
    return dict(sorted(cuts.items()))


def _break_mask(rows: pd.DataFrame, options: SceneOptions) -> np.ndarray:
    """Segments that belong to an out-of-character break."""
    labels = rows["ic_ooc"].tolist()
    ooc = np.array([label == OOC for label in labels])
    in_character = np.flatnonzero([label in (IC, MIXED) for label in labels])
    mask = np.zeros(len(rows), dtype=bool)
    if not len(in_character):
        return mask
    mask[: in_character[0]] = ooc[: in_character[0]]  # pre-game talk
    mask[in_character[-1] + 1 :] = ooc[in_character[-1] + 1 :]  # wrap-up
    starts, ends = rows["start"].to_numpy(float), rows["end"].to_numpy(float)
    mechanics = (rows["segment_type"] == _MECHANICS).to_numpy()
    position = 0
    while position < len(rows):
        if not ooc[position]:
            position += 1
            continue
        last = position
        while last + 1 < len(rows) and ooc[last + 1]:
            last += 1
        span = slice(position, last + 1)
        talk = (ends[span] - starts[span])[~mechanics[span]].sum()
        speech = (ends[span] - starts[span]).sum()
        if ends[last] - starts[position] >= options.break_seconds and talk >= speech / 2:
            mask[span] = True
        position = last + 1
    return mask


def _narration_mask(rows: pd.DataFrame, game_master: set[str]) -> np.ndarray:
    """In-character lines spoken by the game master (or typed as narration)."""
    narration = (rows["segment_type"] == "DM_NARRATION").to_numpy()
    in_character = rows["ic_ooc"].isin([IC, MIXED]).to_numpy()
    by_master = rows["speaker_id"].isin(list(game_master)).to_numpy() if game_master else narration
    return in_character & (by_master | narration)


def _shifts(rows: pd.DataFrame, embeddings: np.ndarray, options: SceneOptions) -> list[int]:
    """Gaps whose topic-shift score passes the threshold, strongest first."""
    n = len(rows)
    if n < 2 * options.window + 1:
        return []
    cumulative = np.vstack([np.zeros((1, embeddings.shape[1])), np.cumsum(embeddings, axis=0)])
    similarity = np.ones(n)
    for gap in range(1, n):
        before = cumulative[gap] - cumulative[max(gap - options.window, 0)]
        after = cumulative[min(gap + options.window, n)] - cumulative[gap]
        norm = np.linalg.norm(before) * np.linalg.norm(after)
        similarity[gap] = float(before @ after / norm) if norm else 1.0
    depth = np.zeros(n)
    for gap in range(1, n):
        left = similarity[max(gap - options.window, 1) : gap + 1].max()
        right = similarity[gap : min(gap + options.window + 1, n)].max()
        depth[gap] = (left - similarity[gap]) + (right - similarity[gap])
    spread = depth[1:].std() or 1.0
    starts, ends = rows["start"].to_numpy(float), rows["end"].to_numpy(float)
    pause = np.zeros(n)
    pause[1:] = np.clip((starts[1:] - ends[:-1]) / options.pause_seconds, 0.0, 1.0)
    score = (depth - depth[1:].mean()) / spread + pause
    chosen: list[int] = []
    for gap in np.argsort(-score[1:], kind="stable") + 1:
        if score[gap] < options.shift_threshold:
            break
        if all(abs(starts[gap] - starts[other]) >= options.min_scene_seconds for other in chosen):
            chosen.append(int(gap))
    return chosen


def _scene_table(
    rows: pd.DataFrame,
    embeddings: np.ndarray,
    cuts: dict[int, str],
    options: SceneOptions,
    summarizer: Summarizer | None,
) -> pd.DataFrame:
    firsts = list(cuts)
    records = []
    for number, (first, last) in enumerate(zip(firsts, [*firsts[1:], len(rows)], strict=True), start=1):
        scene = rows.iloc[first:last]
        durations = (scene["end"] - scene["start"]).clip(lower=0.0)
        weight = scene["ic_ooc"].map({IC: 1.0, MIXED: 0.5}).fillna(0.0)
        total = float(durations.sum())
        in_break = cuts[first] in ("break",) or (cuts[first] == "start" and _all_ooc(scene))
        records.append(
            {
                "scene_id": f"scene-{number:03d}",
                "kind": BREAK if in_break else PLAY,
                "start": float(scene["start"].min()),
                "end": float(scene["end"].max()),
                "segment_ids": tuple(scene["segment_id"]),
                "speakers": tuple(dict.fromkeys(s for s in scene["speaker_id"] if isinstance(s, str))),
                "characters": tuple(
                    dict.fromkeys(c for c in scene["character_tag"] if isinstance(c, str) and c not in UNNAMED_TAGS)
                ),
                "ic_share": round(float((durations * weight).sum() / total), 3) if total > 0 else 0.0,
                "cue": cuts[first],
                "summary": (
                    summarizer(scene)
                    if summarizer is not None
                    else extractive_summary(scene, embeddings[first:last], options)
                ),
            }
        )
    return pd.DataFrame(records, columns=list(SCENE_COLUMNS))


def _all_ooc(scene: pd.DataFrame) -> bool:
    return bool((scene["ic_ooc"] == OOC).all())


def extractive_summary(scene: pd.DataFrame, embeddings: np.ndarray, options: SceneOptions | None = None) -> str:
    """The scene's most central lines, in time order, within ``summary_chars``.

    Lines closest to the scene's mean embedding win, in-character narration first in a
    play scene; each next line must differ from those already taken (maximal marginal
    relevance), so a summary does not repeat itself.
    """
    options = options or SceneOptions()
    texts = [" ".join(str(t).split()) for t in scene["text"].fillna("")]
    if not texts:
        return ""
    centroid = embeddings.mean(axis=0)
    relevance = embeddings @ centroid / (np.linalg.norm(centroid) or 1.0)
    playing = (scene["ic_ooc"] != OOC).any()
    bonus = np.where((scene["segment_type"] == "DM_NARRATION").to_numpy() & playing, 0.15, 0.0)
    bonus += np.where(np.array([len(t.split()) < 4 for t in texts]), -0.3, 0.0)
    score = relevance + bonus
    chosen: list[int] = []
    while len(chosen) < min(options.summary_lines, len(texts)):
        penalty = (embeddings @ embeddings[chosen].T).max(axis=1) if chosen else np.zeros(len(texts))
        candidate = np.where(np.isin(np.arange(len(texts)), chosen), -np.inf, 0.7 * score - 0.3 * penalty)
        chosen.append(int(candidate.argmax()))
    summary = " ".join(texts[i] for i in sorted(chosen))
    if len(summary) > options.summary_chars:
        summary = summary[: options.summary_chars - 1].rsplit(" ", 1)[0] + "…"
    return summary


#: The system prompt of :func:`llm_summarizer`.
SUMMARY_PROMPT = (
    "You summarize one scene of a tabletop role-playing game session from its transcript lines. "
    'Answer with one JSON object {"summary": "<one or two sentences, at most 40 words>"} and nothing else.'
)


def llm_summarizer(spec: str, *, timeout: float = 60.0) -> Summarizer:
    """A summarizer asking an OpenAI-compatible server (``"llm:<base_url>:<model>"``) for each scene.

    Raises (when called)
    --------------------
    LLMUnavailableError, LLMAnswerError
        The server cannot be reached, or answers without a ``summary``.
    """
    import json

    from livereview.stages.chat import ChatServer, LLMAnswerError, json_content, parse_spec

    base_url, model = parse_spec(spec, "'llm:<base_url>:<model>', e.g. 'llm:http://127.0.0.1:11434/v1:llama3'")
    server = ChatServer(base_url, model, timeout=timeout)

    def summarize(scene: pd.DataFrame) -> str:
        lines = [
            {"speaker": s if isinstance(s, str) else "unknown", "text": str(t)}
            for s, t in zip(scene["speaker_id"], scene["text"], strict=True)
        ]
        messages = [
            {"role": "system", "content": SUMMARY_PROMPT},
            {"role": "user", "content": json.dumps(lines, ensure_ascii=False)},
        ]
        with server.client() as client:
            answer = json_content(server.complete(client, messages))
        if not isinstance(answer, dict) or not isinstance(answer.get("summary"), str):
            msg = f"the summary answer must be {{'summary': str}}; got {str(answer)[:120]!r}"
            raise LLMAnswerError(msg)
        return " ".join(answer["summary"].split())

    return summarize
