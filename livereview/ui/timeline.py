"""The session timeline: one lane per speaker, coloured by IC/OOC, with the processing position.

A four-hour session has some 20,000 segments; drawing each as an SVG element and
redrawing four times a second stalls the browser. Instead, speech is aggregated per
speaker lane into :data:`TIME_BINS` time bins (about a pixel each), every bin takes
the label with the most speech, and runs of equal bins become lane blocks. Each label
is drawn as ONE bqplot ``Lines`` mark: a thick stroke per block, blocks separated by
NaN points. The figure holds a handful of SVG paths whatever the session's length,
and the review widget redraws it at most once a second.

Selecting a time range with the brush calls back with ``(start, end)`` in seconds.
The time axis reads ``h:mm:ss`` (``m:ss`` under an hour). Buttons above the figure zoom
in and out around the middle (or onto the brushed range) and pan; the lanes are binned
again over the window shown, and the brush keeps selecting in seconds. The selected
rows are marked on their lanes.
"""

from __future__ import annotations

import math
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
#: Narrowest window the timeline zooms to, in seconds.
MIN_WINDOW = 5.0
#: Tick spacings the time axis chooses from, in seconds (about eight ticks in view).
TICK_STEPS = (0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400)
#: Zoom and pan buttons: action, label, what it does.
CONTROLS = (
    ("pan_left", "◀", "pan left"),
    ("zoom_out", "−", "zoom out"),
    ("zoom_in", "+", "zoom in"),
    ("pan_right", "▶", "pan right"),
    ("zoom_range", "zoom to range", "zoom onto the brushed range"),
    ("fit", "whole session", "show the whole session"),
)


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


def time_label(seconds: float, *, hours: bool, decimals: int = 0) -> str:
    """A time on the axis: ``h:mm:ss`` when ``hours``, else ``m:ss``; ``decimals`` of a second.

    >>> time_label(2051.0, hours=True), time_label(95.5, hours=False, decimals=1)
    ('0:34:11', '1:35.5')
    """
    total = max(float(seconds), 0.0)
    whole = math.floor(total + 1e-9)
    fraction = f"{total - whole:.{decimals}f}"[1:] if decimals else ""
    minutes, secs = divmod(whole, 60)
    if hours:
        return f"{minutes // 60}:{minutes % 60:02d}:{secs:02d}{fraction}"
    return f"{minutes}:{secs:02d}{fraction}"


def time_ticks(start: float, end: float, *, hours: bool) -> tuple[np.ndarray, dict[str, str]]:
    """About eight round tick times in ``[start, end]`` and their labels, keyed as the axis looks them up."""
    span = max(end - start, 1e-3)
    step = next((s for s in TICK_STEPS if span / s <= 8), TICK_STEPS[-1])
    values = np.arange(math.ceil(start / step) * step, end + 1e-9, step, dtype=np.float64)
    decimals = 1 if step < 1 else 0
    return values, {_axis_key(v): time_label(v, hours=hours, decimals=decimals) for v in values}


def _axis_key(value: float) -> str:
    """A tick value as the browser writes a number (``60``, ``0.5``): the axis's label lookup key."""
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def lane_blocks(
    rows: Iterable[Mapping[str, Any]],
    duration: float,
    bins: int = TIME_BINS,
    window: tuple[float, float] | None = None,
) -> LaneBlocks:
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
        Time bins across the window (about one per pixel of the figure).
    window : (float, float), optional
        The span shown, when zoomed in; the whole session by default. Speech outside
        it is left out.

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
    low, high = window if window is not None else (0.0, duration)
    width = max(high - low, 1e-3) / bins
    lane_index = {speaker: i for i, speaker in enumerate(lanes)}
    inside = (np.array(ends) > low) & (np.array(starts) < high)
    lane = np.array([lane_index[s] for s in speakers])[inside]
    code = np.array(codes)[inside]
    start = np.clip(np.array(starts)[inside], low, high) - low
    end = np.clip(np.maximum(np.array(ends)[inside], np.array(starts)[inside]), low, high) - low
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
            block_start, block_end = low + run_starts[chosen] * width, low + run_ends[chosen] * width
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
    """A bqplot figure of the lanes, the processing position, the selected rows and a brush,
    under a row of zoom and pan buttons (:attr:`box` holds both).

    Parameters
    ----------
    duration : float
        The recording's length in seconds (the x axis).
    on_select : callable, optional
        Called with ``(start, end)`` in seconds when a range is brushed, and with
        ``None`` when the brush is cleared. Runs on the kernel's main thread.
    on_action : callable, optional
        Called with a button's action (``"zoom_in"``, ``"pan_left"``... see
        :data:`CONTROLS`) on the kernel's main thread; by default the action is applied
        at once (:meth:`apply`). The review hands it to its updater thread instead.
    """

    def __init__(
        self,
        duration: float,
        on_select: Callable[[tuple[float, float] | None], Any] | None = None,
        on_action: Callable[[str], Any] | None = None,
    ) -> None:
        import bqplot as bq
        import ipywidgets as w

        self.duration = max(float(duration), 1.0)
        self._on_select = on_select
        #: The span shown, ``(start, end)`` in seconds, or None for the whole session.
        self.window: tuple[float, float] | None = None
        self.x_scale = bq.LinearScale(min=0.0, max=self.duration, allow_padding=False)
        self.y_scale = bq.LinearScale(min=-0.6, max=0.6, allow_padding=False)
        scales = {"x": self.x_scale, "y": self.y_scale}
        self.selection_mark = bq.Lines(
            x=np.zeros(0), y=np.zeros(0), scales=scales, colors=[UI_COLORS["selected"]], stroke_width=STROKE_PIXELS + 8
        )
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
        self.x_axis = bq.Axis(scale=self.x_scale, label="time (h:mm:ss)", grid_lines="none")
        self.y_axis = bq.Axis(scale=self.y_scale, side="left", tick_values=np.zeros(0), grid_lines="none")
        self.brush = bq.interacts.BrushIntervalSelector(scale=self.x_scale, marks=[], color=UI_COLORS["accent"])
        self.brush.observe(self._brushed, names=["selected"])
        self.figure = bq.Figure(
            marks=[self.selection_mark, *self.marks.values(), self.position_mark],
            axes=[self.x_axis, self.y_axis],
            interaction=self.brush,
            animation_duration=0,
            fig_margin={"top": 8, "bottom": 36, "left": 110, "right": 16},
            padding_y=0.0,
            layout=w.Layout(width="100%", height=f"{self._height(1)}px"),
        )
        self.figure.add_class("lr-timeline")
        act = on_action or self.apply
        self.buttons = {
            action: w.Button(description=text, tooltip=tip, layout=w.Layout(width="auto"))
            for action, text, tip in CONTROLS
        }
        for action, button in self.buttons.items():
            button.add_class(f"lr-timeline-{action.replace('_', '-')}")
            button.on_click(lambda _button, action=action: act(action))
        self.window_label = w.Label()
        self.window_label.add_class("lr-timeline-window")
        controls = w.HBox([*self.buttons.values(), self.window_label], layout=w.Layout(align_items="center"))
        controls.add_class("lr-timeline-controls")
        self.box = w.VBox([controls, self.figure])
        self.lanes: list[str] = []
        self.blocks = 0
        self._selected: list[tuple[float, float, str]] = []
        self._show_window()

    @staticmethod
    def _height(lanes: int) -> int:
        return 52 + LANE_PIXELS * max(lanes, 1)

    def update(
        self,
        rows: Iterable[Mapping[str, Any]],
        position: float,
        duration: float | None = None,
        names: Mapping[str, str] | None = None,
    ) -> None:
        """Redraw the lanes from ``rows`` over the window shown and move the position marker (a few messages).

        ``names`` labels a lane by the player its speaker is mapped to.
        """
        if duration:
            self.duration = max(float(duration), 1.0)
        blocks = lane_blocks(rows, self.duration, window=self.window)
        top = max(len(blocks.lanes), 1) - 0.4
        names = names or {}
        labels = {str(len(blocks.lanes) - 1 - i): names.get(s, s) for i, s in enumerate(blocks.lanes)}
        with self.figure.hold_sync():
            self._show_window()
            if blocks.lanes != self.lanes or labels != self.y_axis.tick_labels:
                self.y_scale.min, self.y_scale.max = -0.6, top
                # Labels before values: the axis redraws its ticks with the labels it has then.
                self.y_axis.tick_labels = labels
                self.y_axis.tick_values = np.arange(len(blocks.lanes), dtype=np.float64)
                self.figure.layout.height = f"{self._height(len(blocks.lanes))}px"
                self.lanes = blocks.lanes
            for label, mark in self.marks.items():
                with mark.hold_sync():
                    mark.x, mark.y = blocks.x[label], blocks.y[label]
            self.position_mark.x = np.array([position, position], dtype=np.float64)
            self.position_mark.y = np.array([-0.6, top], dtype=np.float64)
            self._draw_selection()
        self.blocks = blocks.blocks

    def mark_selection(self, rows: Iterable[Mapping[str, Any]], *, limit: int = 500) -> None:
        """Mark the selected ``rows`` on their lanes; a single row outside the window pans to it."""
        self._selected = [(r["start"], r["end"], r.get("speaker") or NO_SPEAKER) for r in rows][:limit]
        if len(self._selected) == 1 and self.window is not None:
            start, end, _ = self._selected[0]
            low, high = self.window
            if end < low or start > high:
                half = (high - low) / 2
                self.window = self._clamped((start + end) / 2 - half, (start + end) / 2 + half)
        with self.figure.hold_sync():
            self._show_window()
            self._draw_selection()

    def apply(self, action: str) -> None:
        """Zoom or pan as a button does (see :data:`CONTROLS`); the lanes follow at the next :meth:`update`."""
        low, high = self.window or (0.0, self.duration)
        width, middle = high - low, (low + high) / 2
        if action == "zoom_in":
            window = (middle - width / 4, middle + width / 4)
        elif action == "zoom_out":
            window = (middle - width, middle + width)
        elif action in ("pan_left", "pan_right"):
            shift = width / 2 if action == "pan_right" else -width / 2
            window = (low + shift, high + shift)
        elif action == "zoom_range":
            brushed = self.brush.selected
            if brushed is None or len(brushed) != 2:
                return  # nothing brushed: nothing to zoom onto
            window = tuple(sorted(float(v) for v in brushed))
        elif action == "fit":
            window = (0.0, self.duration)
        else:
            msg = f"unknown timeline action {action!r}; use one of {[a for a, _, _ in CONTROLS]}"
            raise ValueError(msg)
        self.window = self._clamped(*window)
        self._show_window()

    def clear_selection(self) -> None:
        """Remove the brushed range (the callback then receives ``None``)."""
        self.brush.selected = None

    def _clamped(self, low: float, high: float) -> tuple[float, float] | None:
        """A window of at least :data:`MIN_WINDOW` seconds inside the session; None when it covers it all."""
        width = min(max(high - low, MIN_WINDOW), self.duration)
        low = min(max(low, 0.0), self.duration - width)
        return None if width >= self.duration else (low, low + width)

    def _show_window(self) -> None:
        low, high = self.window or (0.0, self.duration)
        hours = self.duration >= 3600
        values, labels = time_ticks(low, high, hours=hours)
        if (self.x_scale.min, self.x_scale.max) != (low, high):
            self.x_scale.min, self.x_scale.max = low, high
        if self.x_axis.tick_labels != labels:
            self.x_axis.label = f"time ({'h:mm:ss' if hours else 'm:ss'})"
            self.x_axis.tick_labels = labels
            self.x_axis.tick_values = values
        shown = f"{time_label(low, hours=hours)}–{time_label(high, hours=hours)}"
        self.window_label.value = f"showing {shown} of {time_label(self.duration, hours=hours)}"

    def _draw_selection(self) -> None:
        lane_of = {speaker: len(self.lanes) - 1 - i for i, speaker in enumerate(self.lanes)}
        chosen = [(s, e, lane_of[k]) for s, e, k in self._selected if k in lane_of]
        xs = np.array([v for s, e, _ in chosen for v in (s, s, max(e, s + 1e-3))], dtype=np.float64)
        ys = np.array([v for _, _, lane in chosen for v in (np.nan, lane, lane)], dtype=np.float64)
        with self.selection_mark.hold_sync():
            self.selection_mark.x, self.selection_mark.y = xs, ys

    def _brushed(self, change: dict[str, Any]) -> None:
        if self._on_select is None:
            return
        value = change["new"]
        if value is None or len(value) < 2:
            self._on_select(None)
            return
        start, end = sorted(float(v) for v in value[:2])
        self._on_select(None if end <= start else (start, end))
