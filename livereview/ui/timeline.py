"""The session timeline: one lane per speaker, coloured by IC/OOC, with the processing position.

A four-hour session has some 20,000 segments; drawing each as an SVG element and
redrawing four times a second stalls the browser. Instead, speech is aggregated per
speaker lane into :data:`TIME_BINS` time bins (about a pixel each), every bin takes
the label with the most speech, and runs of equal bins become lane blocks. Each label
is drawn as ONE bqplot ``Lines`` mark: a thick stroke per block, blocks separated by
NaN points. The figure holds a handful of SVG paths whatever the session's length,
and the review widget redraws it at most once a second.

Selecting a time range with the brush calls back with ``(start, end)`` in seconds.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from livereview.core.palette import LABEL_COLORS, UI_COLORS

#: Lane of segments without a speaker yet.
NO_SPEAKER = "(no speaker)"
#: Time bins across the session: about one per pixel of the figure.
TIME_BINS = 1500
LANE_PIXELS = 26
STROKE_PIXELS = 16


@dataclass(frozen=True)
class LaneBlocks:
    """Lane blocks ready to draw.

    Attributes
    ----------
    lanes : list of str
        Speakers, top to bottom.
    x, y : dict of label to (num_points,) np.ndarray of float
        Per IC/OOC label, three points per block: a NaN that breaks the stroke, then
        ``(start, lane)`` and ``(end, lane)``. ``y`` is the lane index counted from the bottom.
    blocks : int
        Number of blocks drawn.
    """

    lanes: list[str]
    x: dict[str | None, np.ndarray]
    y: dict[str | None, np.ndarray]
    blocks: int


def lane_blocks(rows: Iterable[Mapping[str, Any]], duration: float, bins: int = TIME_BINS) -> LaneBlocks:
    """Aggregate segments into lane blocks over ``bins`` time bins.

    Each bin of a lane takes the IC/OOC label with the most speech in it; runs of bins
    with the same label become one block. A lane therefore never has more than
    ``bins`` blocks, however many segments the session has.

    Parameters
    ----------
    rows : iterable of mapping
        Segments with ``start``, ``end``, ``speaker`` and ``ic_ooc`` (corrected values).
    duration : float
        The session's length in seconds (the time axis).
    bins : int
        Time bins across the session (about one per pixel of the figure).

    Returns
    -------
    LaneBlocks
    """
    labels = list(LABEL_COLORS)
    code_of = {label: i for i, label in enumerate(labels)}
    starts, ends, speakers, codes = [], [], [], []
    for row in rows:
        starts.append(float(row["start"]))
        ends.append(float(row["end"]))
        speakers.append(row.get("speaker") or NO_SPEAKER)
        codes.append(code_of.get(row.get("ic_ooc"), code_of[None]))
    lanes = sorted(set(speakers), key=lambda s: (s == NO_SPEAKER, s))
    empty = {label: np.zeros(0) for label in labels}
    if not lanes:
        return LaneBlocks([], empty, dict(empty), 0)
    duration = max(float(duration), max(ends), 1.0)
    width = duration / bins
    lane_index = {speaker: i for i, speaker in enumerate(lanes)}
    lane = np.array([lane_index[s] for s in speakers])
    code = np.array(codes)
    start = np.clip(np.array(starts), 0.0, duration)
    end = np.clip(np.maximum(np.array(ends), start), 0.0, duration)
    first = np.minimum((start / width).astype(np.int64), bins - 1)
    last = np.minimum((end / width).astype(np.int64), bins - 1)
    # (lane, bin, label) -> seconds of speech; segments inside one bin in one vectorized step.
    speech = np.zeros((len(lanes), bins, len(labels)))
    single = first == last
    np.add.at(speech, (lane[single], first[single], code[single]), np.maximum(end - start, 1e-3)[single])
    for i in np.flatnonzero(~single):  # segments longer than a bin: share them out
        edges = np.arange(first[i], last[i] + 2) * width
        overlap = np.minimum(edges[1:], end[i]) - np.maximum(edges[:-1], start[i])
        speech[lane[i], first[i] : last[i] + 1, code[i]] += np.maximum(overlap, 1e-3)
    winner = np.where(speech.sum(axis=2) > 0, speech.argmax(axis=2), -1)  # (lane, bin)
    xs: dict[str | None, list[np.ndarray]] = {label: [] for label in labels}
    ys: dict[str | None, list[np.ndarray]] = {label: [] for label in labels}
    count = 0
    for i, row in enumerate(winner):
        change = np.flatnonzero(np.diff(row)) + 1
        run_starts = np.concatenate(([0], change))
        run_ends = np.concatenate((change, [bins]))
        y = float(len(lanes) - 1 - i)
        for c in np.unique(row[row >= 0]):
            chosen = row[run_starts] == c
            block_start, block_end = run_starts[chosen] * width, run_ends[chosen] * width
            points = np.column_stack((block_start, block_start, block_end)).ravel()
            heights = np.tile([np.nan, y, y], len(block_start))
            xs[labels[c]].append(points)
            ys[labels[c]].append(heights)
            count += len(block_start)
    return LaneBlocks(
        lanes,
        {label: np.concatenate(parts) if parts else np.zeros(0) for label, parts in xs.items()},
        {label: np.concatenate(parts) if parts else np.zeros(0) for label, parts in ys.items()},
        count,
    )


class Timeline:
    """A bqplot figure of the lanes, the processing position and a brush.

    Parameters
    ----------
    duration : float
        The recording's length in seconds (the x axis).
    on_select : callable, optional
        Called with ``(start, end)`` in seconds when a range is brushed, and with
        ``None`` when the brush is cleared. Runs on the kernel's main thread.
    """

    def __init__(self, duration: float, on_select: Callable[[tuple[float, float] | None], Any] | None = None) -> None:
        import bqplot as bq
        import ipywidgets as w

        self.duration = max(float(duration), 1.0)
        self._on_select = on_select
        self.x_scale = bq.LinearScale(min=0.0, max=self.duration, allow_padding=False)
        self.y_scale = bq.LinearScale(min=-0.6, max=0.6, allow_padding=False)
        scales = {"x": self.x_scale, "y": self.y_scale}
        self.marks = {
            label: bq.Lines(
                x=np.zeros(0),
                y=np.zeros(0),
                scales=scales,
                colors=[color],
                stroke_width=STROKE_PIXELS,
            )
            for label, color in LABEL_COLORS.items()
        }
        self.position_mark = bq.Lines(
            x=np.zeros(2), y=np.array([-0.6, 0.6]), scales=scales, colors=[UI_COLORS["position"]], stroke_width=2
        )
        self.x_axis = bq.Axis(scale=self.x_scale, label="seconds", num_ticks=8, grid_lines="none")
        self.y_axis = bq.Axis(scale=self.y_scale, side="left", tick_values=np.zeros(0), grid_lines="none")
        self.brush = bq.interacts.BrushIntervalSelector(scale=self.x_scale, marks=[], color=UI_COLORS["accent"])
        self.brush.observe(self._brushed, names=["selected"])
        self.figure = bq.Figure(
            marks=[*self.marks.values(), self.position_mark],
            axes=[self.x_axis, self.y_axis],
            interaction=self.brush,
            animation_duration=0,
            fig_margin={"top": 8, "bottom": 36, "left": 110, "right": 16},
            padding_y=0.0,
            layout=w.Layout(width="100%", height=f"{self._height(1)}px"),
        )
        self.figure.add_class("lr-timeline")
        self.lanes: list[str] = []
        self.blocks = 0

    @staticmethod
    def _height(lanes: int) -> int:
        return 52 + LANE_PIXELS * max(lanes, 1)

    def update(self, rows: Iterable[Mapping[str, Any]], position: float, duration: float | None = None) -> None:
        """Redraw the lanes from ``rows`` and move the position marker (a few messages)."""
        if duration:
            self.duration = max(float(duration), 1.0)
        blocks = lane_blocks(rows, self.duration)
        top = max(len(blocks.lanes), 1) - 0.4
        with self.figure.hold_sync():
            if self.x_scale.max != self.duration:
                self.x_scale.max = self.duration
            if blocks.lanes != self.lanes:
                self.y_scale.min, self.y_scale.max = -0.6, top
                # Labels before values: the axis redraws its ticks with the labels it has then.
                self.y_axis.tick_labels = {str(len(blocks.lanes) - 1 - i): s for i, s in enumerate(blocks.lanes)}
                self.y_axis.tick_values = np.arange(len(blocks.lanes), dtype=np.float64)
                self.figure.layout.height = f"{self._height(len(blocks.lanes))}px"
                self.lanes = blocks.lanes
            for label, mark in self.marks.items():
                with mark.hold_sync():
                    mark.x, mark.y = blocks.x[label], blocks.y[label]
            self.position_mark.x = np.array([position, position], dtype=np.float64)
            self.position_mark.y = np.array([-0.6, top], dtype=np.float64)
        self.blocks = blocks.blocks

    def clear_selection(self) -> None:
        """Remove the brushed range (the callback then receives ``None``)."""
        self.brush.selected = None

    def _brushed(self, change: dict[str, Any]) -> None:
        if self._on_select is None:
            return
        value = change["new"]
        if value is None or len(value) < 2:
            self._on_select(None)
            return
        start, end = sorted(float(v) for v in value[:2])
        self._on_select(None if end <= start else (start, end))
