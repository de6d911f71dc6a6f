"""Exports of the merged view: plain text, SRT, WebVTT, JSON and RTTM.

SubRip is written by the ``srt`` package, WebVTT by ``webvtt-py`` and RTTM by
pyannote.core's :class:`~pyannote.core.Annotation`; plain text and JSON by hand.

Every exporter is a pure function ``exporter(frame, metadata, selection, *, turns=None) -> str``
over a segment table (normally :func:`livereview.review.view.merged_view`, so operators'
corrections are in every export) and a metadata dict with at least ``session_id``,
``audio_path`` and ``duration``. ``selection`` keeps ``"all"`` segments, or the
in-character (``"ic"``) or out-of-character (``"ooc"``) ones; MIXED segments count
for both. ``turns`` are the session's speaker turns with corrections
(``Session.diarization()``; ``Session.export`` gives them): with them RTTM is written from
the turns, so it keeps overlapped speech and speech no transcript segment covers, and the
transcript formats write a speaker change inside a segment as a line or cue of its own,
JSON giving every word its speaker and every segment the other speakers heard during it
(:mod:`livereview.review.attribution`).

Usage
-----
::

    write_export(session.view(), session.metadata, "srt", "out/session-ic.srt", selection="ic")
"""

from __future__ import annotations

import datetime as dt
import html
import json
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd
import srt
import webvtt
from pyannote.core import Annotation, Segment, Timeline

from livereview.core.segments import IC, MIXED, OOC
from livereview.review.attribution import other_speakers, segment_words, speaker_lines

#: Selection name -> IC/OOC labels kept (None: every segment, labelled or not).
SELECTIONS: dict[str, tuple[str, ...] | None] = {
    "all": None,
    "ic": (IC, MIXED),
    "ooc": (OOC, MIXED),
}
REQUIRED_METADATA = ("session_id", "audio_path", "duration")
REQUIRED_COLUMNS = ("start", "end", "text", "speaker_id", "character_tag", "ic_ooc")


class Exporter(Protocol):
    """``exporter(frame, metadata, selection, *, turns=None) -> str``."""

    def __call__(
        self,
        frame: pd.DataFrame,
        metadata: Mapping[str, Any],
        selection: str = "all",
        *,
        turns: pd.DataFrame | None = None,
    ) -> str: ...


def to_txt(
    frame: pd.DataFrame, metadata: Mapping[str, Any], selection: str = "all", *, turns: pd.DataFrame | None = None
) -> str:
    """Transcript lines ``[HH:MM:SS] Speaker as Character (IC): text``.

    ``" as Character"`` is left out without a character tag, ``" (IC)"`` without a
    label, and the speaker is ``Unknown`` when none is known. With ``turns``, one line
    per speaker within a segment.
    """
    rows = _lines(frame, metadata, selection, turns)
    return "".join(f"[{_clock(row['start'])}] {_caption(row)}\n" for row in rows)


def to_srt(
    frame: pd.DataFrame, metadata: Mapping[str, Any], selection: str = "all", *, turns: pd.DataFrame | None = None
) -> str:
    """SubRip subtitles (written by the ``srt`` package): a numbered cue per segment, per speaker with ``turns``."""
    rows = _lines(frame, metadata, selection, turns)
    cues = [
        srt.Subtitle(number, _duration(row["start"]), _duration(row["end"]), _caption(row))
        for number, row in enumerate(rows, 1)
    ]
    return srt.compose(cues, reindex=False)


def to_vtt(
    frame: pd.DataFrame, metadata: Mapping[str, Any], selection: str = "all", *, turns: pd.DataFrame | None = None
) -> str:
    """WebVTT subtitles (written by ``webvtt-py``), one cue per segment, cue id = segment id.

    With ``turns`` a segment with a speaker change is one cue per speaker, the first with
    the segment id and the next ones ``<segment id>#2``, ``#3``. Cue text is escaped
    (``&``, ``<``, ``>``), so a transcript never reads as markup.
    """
    rows = _lines(frame, metadata, selection, turns)
    cues = [
        webvtt.Caption(
            _vtt_time(row["start"]),
            _vtt_time(row["end"]),
            html.escape(_caption(row), quote=False),
            identifier=str(row["segment_id"]) + (f"#{row['line']}" if row.get("line", 1) > 1 else ""),
        )
        for row in rows
    ]
    return webvtt.WebVTT(captions=cues).content


def to_json(
    frame: pd.DataFrame, metadata: Mapping[str, Any], selection: str = "all", *, turns: pd.DataFrame | None = None
) -> str:
    """``{"metadata": ..., "segments": [...]}``; times rounded to ms, missing values null.

    With ``turns`` each word has its ``speaker_id``, each segment its ``other_speakers``
    and, when the speaker changes inside it, ``lines`` (``start``, ``end``, ``speaker_id``,
    ``text`` per speaker run).
    """
    selected = _selected_frame(frame, metadata, selection)
    rows = selected.to_dict("records")
    if turns is not None and "words" in frame.columns:
        others = other_speakers(selected, turns).tolist()
        for row, (_, words), heard in zip(rows, segment_words(selected, turns), others, strict=True):
            lines = speaker_lines(row, words)
            row["words"], row["other_speakers"] = words, list(heard)
            if len(lines) > 1:
                row["lines"] = [{key: line[key] for key in ("start", "end", "speaker_id", "text")} for line in lines]
    for row in rows:
        row["start"], row["end"] = round(row["start"], 3), round(row["end"], 3)
    document = {"metadata": {**metadata, "selection": selection}, "segments": rows}
    return json.dumps(_plain(document), ensure_ascii=False, indent=2, allow_nan=False, default=str) + "\n"


def to_rttm(
    frame: pd.DataFrame, metadata: Mapping[str, Any], selection: str = "all", *, turns: pd.DataFrame | None = None
) -> str:
    """NIST RTTM (written by pyannote.core).

    With ``turns`` (``start``, ``end``, ``speaker_id``: the session's speaker turns with
    corrections, ``Session.diarization()``) one ``SPEAKER`` line per turn, so overlapped
    speech, speaker changes inside a segment and speech no segment covers are kept; a
    selection other than ``"all"`` keeps the turns inside its segments. Without, one line
    per segment with a speaker and a duration.
    """
    rows = _selected(frame, metadata, selection)
    annotation = Annotation(uri=_token(metadata["session_id"]))
    if turns is None:
        for row in rows:
            if _filled(row["speaker_id"]) and row["end"] > row["start"]:
                annotation[Segment(row["start"], row["end"]), row["segment_id"]] = _token(row["speaker_id"])
        return annotation.to_rttm()
    for index, (start, end, speaker) in enumerate(turns[["start", "end", "speaker_id"]].itertuples(index=False)):
        if _filled(speaker) and end > start:
            annotation[Segment(float(start), float(end)), index] = _token(speaker)
    if selection != "all":
        spans = Timeline([Segment(row["start"], row["end"]) for row in rows if row["end"] > row["start"]])
        annotation = annotation.crop(spans.support(), mode="intersection")
    return annotation.to_rttm()


EXPORTERS: dict[str, Exporter] = {
    "txt": to_txt,
    "srt": to_srt,
    "vtt": to_vtt,
    "json": to_json,
    "rttm": to_rttm,
}


def export(
    frame: pd.DataFrame,
    metadata: Mapping[str, Any],
    fmt: str,
    selection: str = "all",
    *,
    turns: pd.DataFrame | None = None,
) -> str:
    """The text of one export; ``fmt`` is a key of :data:`EXPORTERS` (``turns``: see the module docstring)."""
    if fmt not in EXPORTERS:
        msg = f"unknown export format {fmt!r}; use one of {sorted(EXPORTERS)}"
        raise ValueError(msg)
    return EXPORTERS[fmt](frame, metadata, selection, turns=turns)


def write_export(
    frame: pd.DataFrame,
    metadata: Mapping[str, Any],
    fmt: str,
    path: os.PathLike[str] | str,
    selection: str = "all",
    *,
    turns: pd.DataFrame | None = None,
) -> Path:
    """Write one export to ``path`` (UTF-8; parent folders are created).

    Parameters
    ----------
    frame : pandas.DataFrame
        The merged view (or any segment table).
    metadata : mapping
        At least ``session_id``, ``audio_path`` and ``duration`` (seconds).
    fmt : str
        ``"txt"``, ``"srt"``, ``"vtt"``, ``"json"`` or ``"rttm"``.
    path : path-like
        Where to write.
    selection : str
        ``"all"``, ``"ic"`` or ``"ooc"``.
    turns : pandas.DataFrame, optional
        The speaker turns with corrections: RTTM is written from them and the transcript
        formats split segments at speaker changes (see the module docstring).

    Returns
    -------
    pathlib.Path
        The file written.
    """
    text = export(frame, metadata, fmt, selection, turns=turns)
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text, encoding="utf-8")
    return target


def _selected(frame: pd.DataFrame, metadata: Mapping[str, Any], selection: str) -> list[dict[str, Any]]:
    """The rows of ``selection`` as dicts, ordered by time, after checking the inputs."""
    return _selected_frame(frame, metadata, selection).to_dict("records")


def _selected_frame(frame: pd.DataFrame, metadata: Mapping[str, Any], selection: str) -> pd.DataFrame:
    """The rows of ``selection``, ordered by time, with a ``segment_id`` column, after checking the inputs."""
    if selection not in SELECTIONS:
        msg = f"unknown selection {selection!r}; use one of {sorted(SELECTIONS)}"
        raise ValueError(msg)
    missing = [key for key in REQUIRED_METADATA if key not in metadata]
    if missing:
        msg = f"export metadata lacks {missing}; give at least {REQUIRED_METADATA}"
        raise ValueError(msg)
    absent = [column for column in REQUIRED_COLUMNS if column not in frame.columns]
    if absent:
        msg = f"segment table lacks columns {absent}; exports need {REQUIRED_COLUMNS}"
        raise ValueError(msg)
    labels = SELECTIONS[selection]
    if labels is not None:
        frame = frame[frame["ic_ooc"].isin(labels)]
    frame = frame.sort_values(["start", "end"], kind="stable")
    if "segment_id" not in frame.columns:
        frame = frame.assign(segment_id=frame.index)
    return frame


def _lines(
    frame: pd.DataFrame, metadata: Mapping[str, Any], selection: str, turns: pd.DataFrame | None
) -> list[dict[str, Any]]:
    """The selected rows; with ``turns``, each split into one row per speaker run (:func:`speaker_lines`)."""
    selected = _selected_frame(frame, metadata, selection)
    rows = selected.to_dict("records")
    if turns is None or "words" not in frame.columns:
        return rows
    words = segment_words(selected, turns)
    return [line for row, (_, found) in zip(rows, words, strict=True) for line in speaker_lines(row, found)]


def _filled(value: Any) -> bool:
    """Whether ``value`` is a real, non-blank value."""
    value = _plain(value)
    return value is not None and bool(str(value).strip())


def _caption(row: Mapping[str, Any]) -> str:
    """``Speaker as Character (IC): text``, on one line."""
    speaker = str(row["speaker_id"]) if _filled(row["speaker_id"]) else "Unknown"
    character = f" as {row['character_tag']}" if _filled(row["character_tag"]) else ""
    label = f" ({row['ic_ooc']})" if _filled(row["ic_ooc"]) else ""
    text = " ".join(str(row["text"]).split()) if _filled(row["text"]) else ""
    return f"{speaker}{character}{label}: {text}"


def _clock(seconds: float) -> str:
    """``HH:MM:SS``, whole seconds rounded down."""
    whole = max(int(seconds), 0)
    return f"{whole // 3600:02d}:{whole // 60 % 60:02d}:{whole % 60:02d}"


def _duration(seconds: float) -> dt.timedelta:
    """A time on the recording, rounded to the millisecond as every export writes it."""
    return dt.timedelta(milliseconds=max(round(seconds * 1000), 0))


def _vtt_time(seconds: float) -> str:
    """``HH:MM:SS.mmm``, as WebVTT writes times."""
    return srt.timedelta_to_srt_timestamp(_duration(seconds)).replace(",", ".")


def _token(value: Any) -> str:
    """A value as one whitespace-free RTTM field."""
    return "_".join(str(value).split()) or "<NA>"


def _plain(value: Any) -> Any:
    """JSON-ready data: numpy values unwrapped, tuples as lists, NaN and NA as None."""
    if isinstance(value, Mapping):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple | np.ndarray):
        return [_plain(item) for item in value]
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return None
    return value
