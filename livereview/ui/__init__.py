"""The live review in Jupyter: the segment grid, the timeline and clip playback.

:mod:`~livereview.ui.grid` (the anywidget grid and its row format),
:mod:`~livereview.ui.timeline` (bqplot) with :mod:`~livereview.ui.scene_lane` (the scenes
above it), :mod:`~livereview.ui.playback` and
:mod:`~livereview.ui.review` (:func:`review`, which puts them together and follows a
session). Their front-end code lives in the top-level ``widgets/`` folder, shipped
as :mod:`livereview.static`.

May import: everything below it (review, live, store, stages, core). Not the server or the CLI.
"""
