"""The currency every other room trades in: segments, turns, live events, party, options, selections.

Holds plain data and rules with no I/O beyond JSON lines: :mod:`~livereview.core.segments`
(the segment record and table), :mod:`~livereview.core.turns` (speaker turns),
:mod:`~livereview.core.events` (the live event schema), :mod:`~livereview.core.party`,
:mod:`~livereview.core.options` (run options), :mod:`~livereview.core.selection`,
:mod:`~livereview.core.roles`, :mod:`~livereview.core.palette` and
:mod:`~livereview.core.jsonl` (the one JSON-lines reader and writer).

May import: nothing of livereview outside ``core``, and no model library.
"""
