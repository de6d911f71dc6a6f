"""What a classifier sees of a session, and how its answer lands on the segments.

:func:`classification_frame` builds the classifier's input from the segments to
classify, a few earlier ones as context, the operators' corrections (text, speaker)
and the speaker mapping; :func:`classify_segments` runs a classifier on it and
writes the labels and statuses onto the segments. The pipeline and the reruns both
classify through these two functions.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from livereview.core.party import Party
from livereview.core.segments import CLASSIFIED, NEEDS_ATTENTION, Segment
from livereview.stages.classify.labels import CLASSIFICATION_COLUMNS, NEEDS_ATTENTION_THRESHOLD, Classifier

#: Earlier segments given to the classifier as context.
CONTEXT_SEGMENTS = 3


def classification_frame(
    targets: Sequence[Segment],
    session_segments: Sequence[Segment],
    corrected: Mapping[str, Mapping[str, Any]],
    speaker_map: Mapping[str, str],
    party: Party | None,
) -> pd.DataFrame:
    """The rows a classifier sees: ``targets`` after up to three earlier segments as context.

    Parameters
    ----------
    targets : sequence of Segment
        The segments to classify, in time order.
    session_segments : sequence of Segment
        The session's segments in time order (context is taken from them).
    corrected : mapping
        ``segment_id -> field -> value``: operator corrections of text and speaker win.
    speaker_map : mapping
        Diarized speaker -> player.
    party : Party or None
        Tells which player is the game master.

    Returns
    -------
    pandas.DataFrame
        Indexed by segment id: ``segment_id``, ``start``, ``end``, ``text``, ``speaker_id``,
        ``context`` (True for context rows), ``player`` and ``is_game_master``.
    """
    wanted = {s.segment_id for s in targets}
    first = min((s.start for s in targets), default=0.0)
    earlier = [s for s in session_segments if s.start < first and s.segment_id not in wanted]
    rows = [*earlier[-CONTEXT_SEGMENTS:], *targets]
    frame = pd.DataFrame(
        {
            "segment_id": [s.segment_id for s in rows],
            "start": [s.start for s in rows],
            "end": [s.end for s in rows],
            "text": [corrected.get(s.segment_id, {}).get("text", s.text) for s in rows],
            "speaker_id": [corrected.get(s.segment_id, {}).get("speaker_id", s.speaker_id) for s in rows],
            "context": [s.segment_id not in wanted for s in rows],
        },
        index=[s.segment_id for s in rows],
    )
    frame["player"] = frame["speaker_id"].map(lambda speaker: speaker_map.get(speaker, speaker))
    frame["is_game_master"] = (
        frame["player"].map(lambda player: player == party.game_master) if party is not None else False
    )
    return frame


def classify_segments(
    classifier: Classifier, frame: pd.DataFrame, party: Party | None, segments: Sequence[Segment]
) -> None:
    """Run ``classifier`` on ``frame`` and fill the IC/OOC columns and status of ``segments`` in place.

    Raises
    ------
    ValueError
        The classifier's answer lacks some of :data:`CLASSIFICATION_COLUMNS`.
    """
    if not segments:
        return
    result = classifier(frame, party)
    missing = set(CLASSIFICATION_COLUMNS) - set(result.columns)
    if missing:
        msg = (
            f"classifier {classifier!r} returned no columns {sorted(missing)}; it must return {CLASSIFICATION_COLUMNS}"
        )
        raise ValueError(msg)
    for segment in segments:
        row = result.loc[segment.segment_id]
        segment.ic_ooc = row["ic_ooc"]
        segment.ic_ooc_confidence = float(row["ic_ooc_confidence"])
        segment.segment_type = row["segment_type"]
        segment.character_tag = row["character_tag"]
        segment.classifier = row["classifier"]
        low = segment.ic_ooc_confidence < NEEDS_ATTENTION_THRESHOLD
        segment.status = NEEDS_ATTENTION if low else CLASSIFIED
