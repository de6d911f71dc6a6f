"""The processing stages, in the order data flows through them, and the pipeline that runs them.

:mod:`~livereview.stages.audio` (decode) -> :mod:`~livereview.stages.chunks` (VAD-aware
chunking) -> :mod:`~livereview.stages.transcribe` (faster-whisper) ->
:mod:`~livereview.stages.diarize` (pyannote.audio) -> :mod:`~livereview.stages.classify`
(IC/OOC and character tags); :mod:`~livereview.stages.pipeline` runs them chunk by
chunk and hands every result and event to the :class:`~livereview.stages.pipeline.RunSink`
it is given.

May import: :mod:`livereview.core`. Never the store, the live emitter, the review,
the UI or the server: results leave only through the sink. The model libraries
(torch, pyannote.audio, faster-whisper/CTranslate2, sentence-transformers) are
imported here only, by the stage that runs each, and only when it runs.
"""
