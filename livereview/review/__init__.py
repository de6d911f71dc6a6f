"""A recorded session as users work with it: the Session facade, the merged view, exports and reruns.

:mod:`~livereview.review.state` (an opened session directory, read through its stores),
:mod:`~livereview.review.run` (the run: the sink the pipeline writes through),
:mod:`~livereview.review.view` (base results plus corrections, the one merged view),
:mod:`~livereview.review.exports`, :mod:`~livereview.review.reruns` (the all-or-nothing
commit and history of a rerun) with :mod:`~livereview.review.reclassify` and
:mod:`~livereview.review.rediarize`,
:mod:`~livereview.review.observability` (metrics and health of a session) and
:mod:`~livereview.review.session` (:class:`Session`, the facade over all of them).

May import: core, stages, live and store. Not the UI, the server or the CLI.
"""
