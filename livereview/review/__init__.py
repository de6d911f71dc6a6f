"""A recorded session as users work with it: the Session facade, the merged view, exports and reruns.

:mod:`~livereview.review.state` (an opened session directory, read through its stores),
:mod:`~livereview.review.run` (the run: the sink the pipeline writes through),
:mod:`~livereview.review.view` (base results plus corrections, the one merged view),
:mod:`~livereview.review.exports`, :mod:`~livereview.review.reruns` (the all-or-nothing
commit and history of a rerun) with :mod:`~livereview.review.reclassify` and
:mod:`~livereview.review.rediarize`,
:mod:`~livereview.review.observability` (metrics and health of a session),
:mod:`~livereview.review.snippets` (audio clips with a manifest), :mod:`~livereview.review.story`
(scenes and the knowledge base, kept current), :mod:`~livereview.review.artifacts` (what each
artifact was built from, and whether it is stale),
:mod:`~livereview.review.session` (:class:`Session`, the facade over all of them) and
:mod:`~livereview.review.campaign` (the sessions of one campaign, entities merged across them).

May import: core, stages, live and store. Not the UI, the server or the CLI.
"""
