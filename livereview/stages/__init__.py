"""The processing stages, in the order data flows through them, and the pipeline that runs them.

:mod:`~livereview.stages.audio` (decode) -> :mod:`~livereview.stages.chunks` (VAD-aware
chunking) -> :mod:`~livereview.stages.transcribe` (faster-whisper) ->
:mod:`~livereview.stages.diarize` (pyannote.audio) -> :mod:`~livereview.stages.classify`
(IC/OOC and character tags); :mod:`~livereview.stages.pipeline` runs them chunk by
chunk and hands every result and event to the :class:`~livereview.stages.pipeline.RunSink`
it is given. Downstream of a session's merged view: :mod:`~livereview.stages.scenes`
(scene segmentation) and :mod:`~livereview.stages.knowledge` (entities, spaCy); both, and
the classifier, ask LLMs through :mod:`~livereview.stages.chat`.

May import: :mod:`livereview.core`. Never the store, the live emitter, the review,
the UI or the server: results leave only through the sink. The model libraries
(torch, pyannote.audio, faster-whisper/CTranslate2, sentence-transformers, spaCy) are
imported here only, by the stage that runs each, and only when it runs; importing
this package first makes their OpenMP threads sleep instead of spinning while they
wait (:func:`~livereview.core.threads.quiet_openmp`).
"""

from livereview.core.threads import quiet_openmp

quiet_openmp()
