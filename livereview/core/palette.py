"""The colours of the review, defined once: the timeline draws with them and the front end gets them as CSS variables.

:data:`LABEL_COLORS` colours IC/OOC labels (``None``: not classified yet);
:data:`UI_COLORS` the other marks. :func:`css_variables` names each ``--lr-<name>``,
the variables ``widgets/review.css`` and ``widgets/playback.js`` read.

Usage
-----
>>> css_variables()["--lr-ic"]
'#2e7d32'
"""

from __future__ import annotations

#: Colour per IC/OOC label; ``None`` is a segment not classified yet.
LABEL_COLORS: dict[str | None, str] = {
    "IC": "#2e7d32",
    "OOC": "#ef6c00",
    "MIXED": "#7b1fa2",
    None: "#9e9e9e",
}
#: Name (without ``--lr-``) of the CSS variable of each label colour.
LABEL_VARIABLES: dict[str | None, str] = {"IC": "ic", "OOC": "ooc", "MIXED": "mixed", None: "unlabelled"}
#: Colours of the other marks: the processing position, failures and low confidence, the
#: selection, brush and played clip, idle states, a running run, the selected row on the
#: timeline, and rows changed by the pipeline after the operator saw them.
UI_COLORS: dict[str, str] = {
    "position": "#c62828",
    "alert": "#c62828",
    "accent": "#1565c0",
    "idle": "#9e9e9e",
    "running": "#43a047",
    "selected": "#f9a825",
    "changed": "#ad1457",
}


def css_variables() -> dict[str, str]:
    """Every palette colour as ``{"--lr-<name>": "#rrggbb"}``."""
    labels = {f"--lr-{LABEL_VARIABLES[label]}": color for label, color in LABEL_COLORS.items()}
    return labels | {f"--lr-{name}": color for name, color in UI_COLORS.items()}
