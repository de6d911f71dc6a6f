"""Who said each word: transcript segments laid over the speaker turns.

A transcript segment has one speaker, but a table talks over itself: a player cuts in,
two people speak at once. These functions lay the merged view's words over the
session's speaker turns (``Session.diarization()``, operators' corrections included), so
that every word carries the speaker heard during it, every segment lists the other
speakers heard during it, and the exports write a speaker change inside a segment as a
line of its own. Nothing here changes a segment or its id.

A word takes the speaker whose turns cover most of it; the segment's own speaker keeps
it while their turns cover at least half as much as the best (overlapped speech stays
with the voice the segment was given). A word no turn touches keeps the segment's speaker.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy.optimize import linear_sum_assignment

from livereview.core.corrections import word_list

#: A segment's own speaker keeps a word while their turns cover this share of the best speaker's.
OWN_SPEAKER_SHARE = 0.5
#: Seconds another speaker must be heard during a segment to be listed in ``other_speakers``.
MIN_OTHER_SPEAKER_SECONDS = 0.3
WORD_COLUMNS = ("segment_id", "word_index", "start", "end", "word", "probability", "speaker_id")


class TurnIndex:
    """Speaker turns sorted by start, for finding the turns that overlap a span."""

    def __init__(self, turns: pd.DataFrame) -> None:
        ordered = turns.sort_values(["start", "end"], kind="stable")
        self.starts = ordered["start"].to_numpy(dtype=float)
        self.ends = ordered["end"].to_numpy(dtype=float)
        self.speakers = ["" if pd.isna(s) else str(s) for s in ordered["speaker_id"].astype(object)]
        self.reach = np.maximum.accumulate(self.ends) if len(self.ends) else self.ends  # furthest end so far

    def overlapping(self, start: float, end: float) -> list[tuple[float, float, str]]:
        """Turns with a speaker that overlap ``[start, end)``, clipped to it."""
        first = int(np.searchsorted(self.reach, start, side="right"))
        last = int(np.searchsorted(self.starts, end, side="left"))
        return [
            (max(self.starts[i], start), min(self.ends[i], end), self.speakers[i])
            for i in range(first, last)
            if self.ends[i] > start and self.speakers[i]
        ]


def speaker_seconds(turns: Sequence[tuple[float, float, str]], start: float, end: float) -> dict[str, float]:
    """Seconds of ``[start, end)`` each speaker's turns cover (overlapping turns of one speaker counted once)."""
    spans: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for first, last, speaker in turns:
        first, last = max(first, start), min(last, end)
        if last > first:
            spans[speaker].append((first, last))
    return {speaker: _union_length(parts) for speaker, parts in spans.items()}


def word_speaker(covered: Mapping[str, float], own: str) -> str:
    """The speaker of one word, from the seconds each speaker covers of it (see the module docstring)."""
    if not covered:
        return own
    best = max(covered, key=covered.__getitem__)
    if own and covered.get(own, 0.0) >= OWN_SPEAKER_SHARE * covered[best]:
        return own
    return best


def segment_words(view: pd.DataFrame, turns: pd.DataFrame) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """Each segment's id and its words, every word dict with its ``speaker_id`` added."""
    index = TurnIndex(turns)
    for segment_id, start, end, speaker, words in zip(
        view.index, view["start"], view["end"], view["speaker_id"].astype(object), view["words"], strict=True
    ):
        own = "" if pd.isna(speaker) else str(speaker)
        words = word_list(words)
        if not words:
            yield str(segment_id), []
            continue
        span_start = min(float(start), float(words[0]["start"]))
        span_end = max(float(end), float(words[-1]["end"]))
        nearby = index.overlapping(span_start, span_end)
        attributed = []
        for word in words:
            covered = speaker_seconds(nearby, float(word["start"]), float(word["end"]))
            attributed.append({**word, "speaker_id": word_speaker(covered, own) or None})
        yield str(segment_id), attributed


def word_table(view: pd.DataFrame, turns: pd.DataFrame) -> pd.DataFrame:
    """One row per word of the view, with the speaker heard during it (columns :data:`WORD_COLUMNS`)."""
    rows = [
        (segment_id, position, w["start"], w["end"], w["word"], w.get("probability"), w["speaker_id"])
        for segment_id, words in segment_words(view, turns)
        for position, w in enumerate(words)
    ]
    return pd.DataFrame(rows, columns=list(WORD_COLUMNS))


def other_speakers(view: pd.DataFrame, turns: pd.DataFrame) -> pd.Series:
    """Per segment, the sorted tuple of other speakers heard during it for at least
    :data:`MIN_OTHER_SPEAKER_SECONDS` (overlapped speech and interjections)."""
    index = TurnIndex(turns)
    found = []
    for start, end, speaker in zip(view["start"], view["end"], view["speaker_id"].astype(object), strict=True):
        own = "" if pd.isna(speaker) else str(speaker)
        covered = speaker_seconds(index.overlapping(float(start), float(end)), float(start), float(end))
        heard = (name for name, seconds in covered.items() if name != own and seconds >= MIN_OTHER_SPEAKER_SECONDS)
        found.append(tuple(sorted(heard)))
    return pd.Series(found, index=view.index, dtype=object, name="other_speakers")


def speaker_lines(row: Mapping[str, Any], words: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """A segment as one line per run of words by one speaker.

    Each line is the segment's row with its own ``start``, ``end``, ``text`` and
    ``speaker_id``; a line by another speaker than the segment's has no character tag
    (the tag belongs to the segment's speaker). A segment is kept whole when its text
    was corrected or its words do not spell its text, so no word an operator typed is lost.
    """
    overridden = row.get("overridden")
    corrected = isinstance(overridden, tuple | list) and "text" in overridden
    if not words or corrected or " ".join(str(row["text"]).split()) != _spelled(words):
        return [dict(row)]
    runs: list[list[Mapping[str, Any]]] = []
    for word in words:
        if runs and runs[-1][-1]["speaker_id"] == word["speaker_id"]:
            runs[-1].append(word)
        else:
            runs.append([word])
    if len(runs) == 1:
        return [dict(row)]
    own = row["speaker_id"]
    lines = []
    for number, run in enumerate(runs):
        speaker = run[0]["speaker_id"]
        lines.append(
            {
                **row,
                "start": float(row["start"]) if number == 0 else float(run[0]["start"]),
                "end": float(row["end"]) if number == len(runs) - 1 else float(runs[number + 1][0]["start"]),
                "text": _spelled(run),
                "speaker_id": speaker,
                "character_tag": row.get("character_tag") if speaker == own else "",
                "line": number + 1,
            }
        )
    return lines


def _spelled(words: Sequence[Mapping[str, Any]]) -> str:
    return " ".join("".join(str(w["word"]) for w in words).split())


def _union_length(spans: list[tuple[float, float]]) -> float:
    total, reach = 0.0, -np.inf
    for start, end in sorted(spans):
        if end > reach:
            total += end - max(start, reach)
            reach = end
    return total


def word_speaker_accuracy(words: pd.DataFrame, reference: pd.DataFrame) -> float:
    """Share of words whose speaker is the reference speaker at the word's midpoint.

    ``words`` is :func:`word_table`'s output; ``reference`` the true turns (``start``,
    ``end``, ``speaker_id``). Speakers are matched one to one to reference speakers so as
    to get the most words right (Hungarian assignment); words at a moment nobody speaks
    in the reference are not counted, and at overlapped moments a word is right when it
    names any of the reference speakers there.
    """
    midpoints = (words["start"].to_numpy(dtype=float) + words["end"].to_numpy(dtype=float)) / 2
    starts, ends = reference["start"].to_numpy(dtype=float), reference["end"].to_numpy(dtype=float)
    truth = reference["speaker_id"].astype(str).to_numpy()
    inside = (starts[None, :] <= midpoints[:, None]) & (midpoints[:, None] < ends[None, :])  # (words, turns)
    counted = inside.any(axis=1)
    if not counted.any():
        return float("nan")
    named = np.array(["" if pd.isna(s) else str(s) for s in words["speaker_id"].astype(object)], dtype=object)
    hypotheses, hypothesis_index = np.unique(named[counted], return_inverse=True)
    references, reference_index = np.unique(truth, return_inverse=True)
    heard = np.zeros((int(counted.sum()), len(references)), dtype=bool)  # reference speakers at each word
    rows, turns = np.nonzero(inside[counted])
    heard[rows, reference_index[turns]] = True
    counts = np.zeros((len(hypotheses), len(references)))
    np.add.at(counts, hypothesis_index, heard)
    chosen, matched = linear_sum_assignment(counts, maximize=True)
    return float(counts[chosen, matched].sum() / counted.sum())
