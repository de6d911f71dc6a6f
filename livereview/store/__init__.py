"""The session directory on disk: results, the event log, the override log and the rerun history.

:mod:`~livereview.store.results` (:class:`SessionStore`: metadata, chunks, segments,
speaker turns, speaker map; the one writer of those files, under one lock),
:mod:`~livereview.store.event_log`, :mod:`~livereview.store.overrides` (the append-only
correction log), :mod:`~livereview.store.override_feed` (announcing corrections of
other writers) and :mod:`~livereview.store.rerun_log`.

May import: :mod:`livereview.core`. Not the stages (the store keeps their results
as core records), the live emitter, or anything above.
"""
