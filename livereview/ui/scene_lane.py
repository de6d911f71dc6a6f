"""The scene lane: a session's scenes as one strip of blocks above the review timeline.

Each scene (:func:`livereview.review.story.session_scenes`) is a block from its start to its
end, in the IC colour for in-character play and the OOC colour for a break, numbered at its
middle. The lane shares the timeline's time scale, so it zooms and pans with it. Like the
timeline's lanes, all blocks of one kind are one bqplot ``Lines`` mark (blocks separated by
NaN points), whatever the number of scenes.

Usage
-----
>>> review = livereview.review(session, user="ana")   # doctest: +SKIP
>>> review.show_scenes()                              # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from livereview.core.palette import LABEL_COLORS

#: Scene kind -> the label colour it is drawn in.
KIND_COLORS = {"play": LABEL_COLORS["IC"], "break": LABEL_COLORS["OOC"]}
LANE_PIXELS = 44
STROKE_PIXELS = 18


def scene_blocks(scenes: pd.DataFrame) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per scene kind, the ``(x, y)`` points of its blocks: a NaN break, then start and end at y = 0."""
    blocks = {}
    for kind in KIND_COLORS:
        chosen = scenes[scenes["kind"] == kind]
        x = np.column_stack([np.full(len(chosen), np.nan), chosen["start"], chosen["end"]]).reshape(-1)
        y = np.where(np.isnan(x), np.nan, 0.0)
        blocks[kind] = (x.astype(np.float64), y)
    return blocks


class SceneLane:
    """The scene lane of a timeline (:class:`livereview.ui.timeline.Timeline`).

    Parameters
    ----------
    x_scale : bqplot.LinearScale
        The timeline's time scale (shared, so zooming moves both).
    scenes : pandas.DataFrame
        The scene table (``scene_id``, ``kind``, ``start``, ``end``, ``summary``...).
    """

    def __init__(self, x_scale: Any, scenes: pd.DataFrame) -> None:
        import bqplot as bq
        import ipywidgets as w

        self.y_scale = bq.LinearScale(min=-0.6, max=0.6, allow_padding=False)
        scales = {"x": x_scale, "y": self.y_scale}
        self.marks = {
            kind: bq.Lines(x=np.zeros(0), y=np.zeros(0), scales=scales, colors=[color], stroke_width=STROKE_PIXELS)
            for kind, color in KIND_COLORS.items()
        }
        self.labels = bq.Label(
            x=np.zeros(0),
            y=np.zeros(0),
            text=[],
            scales=scales,
            colors=["white"],
            align="middle",
            default_size=11,
            y_offset=4,
        )
        axis = bq.Axis(
            scale=self.y_scale, side="left", tick_values=np.array([0.0]), tick_labels={"0": "scenes"}, grid_lines="none"
        )
        self.figure = bq.Figure(
            marks=[*self.marks.values(), self.labels],
            axes=[axis],
            animation_duration=0,
            fig_margin={"top": 4, "bottom": 4, "left": 110, "right": 16},
            padding_y=0.0,
            layout=w.Layout(width="100%", height=f"{LANE_PIXELS}px"),
        )
        self.figure.add_class("lr-scene-lane")
        self.scenes = scenes
        self.update(scenes)

    def update(self, scenes: pd.DataFrame) -> None:
        """Redraw the blocks and numbers of ``scenes``."""
        self.scenes = scenes
        blocks = scene_blocks(scenes)
        with self.figure.hold_sync():
            for kind, mark in self.marks.items():
                with mark.hold_sync():
                    mark.x, mark.y = blocks[kind]
            with self.labels.hold_sync():
                self.labels.x = ((scenes["start"] + scenes["end"]) / 2).to_numpy(np.float64)
                self.labels.y = np.zeros(len(scenes))
                self.labels.text = [str(int(i.rsplit("-", 1)[-1])) for i in scenes["scene_id"]]
        self.figure.title = ""
