"""What is live while a session is processed: the event emitter, metrics and health.

:mod:`~livereview.live.emitter` numbers live events and delivers them to subscribers
without blocking; :mod:`~livereview.live.metrics` counts events and timings;
:mod:`~livereview.live.health` keeps the degraded conditions shown as banners.

May import: :mod:`livereview.core`. Not the stages, the store or anything above.
"""
