"""Many sessions: batch runs on Dask, and the corpus of their session directories.

:mod:`~livereview.corpus.inputs` (which recordings, with which options),
:mod:`~livereview.corpus.worker` (what runs on a Dask worker: models loaded once per
worker, one recording per task), :mod:`~livereview.corpus.runs` (:func:`batch`: the
cluster, the tasks, progress, failures and the ``batch.jsonl`` manifest) and
:mod:`~livereview.corpus.sessions` (:func:`open_corpus`: every session's merged view in
one DataFrame, corpus exports and reclassification over the cluster).

May import: everything below it (review, live, store, stages, core). Not the UI, the
server or the CLI.
"""

from livereview.corpus.runs import batch
from livereview.corpus.sessions import Corpus, open_corpus

__all__ = ["Corpus", "batch", "open_corpus"]
