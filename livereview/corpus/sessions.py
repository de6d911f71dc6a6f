"""A corpus: every session of an output folder, as one table, exported together, reclassified over a cluster.

Usage
-----
>>> corpus = livereview.open_corpus("output")                        # doctest: +SKIP
>>> corpus.view().groupby("session_id")["ic_ooc"].value_counts()    # doctest: +SKIP
>>> corpus.preview_reclassify(classifier="keywords", client=client)  # doctest: +SKIP
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import dask
import dask.dataframe as dd
import pandas as pd
from distributed import Client

from livereview.corpus.runs import manifest_rows
from livereview.review.session import Session
from livereview.store.results import SessionStore


def open_corpus(out_dir: os.PathLike[str] | str) -> Corpus:
    """The corpus of every session directory in ``out_dir`` (a batch's output folder)."""
    return Corpus(out_dir)


class Corpus:
    """The sessions of one output folder, read together.

    Parameters
    ----------
    directory : path
        A folder of session directories (what :func:`livereview.batch` writes).

    Raises
    ------
    FileNotFoundError
        The folder does not exist or holds no session.
    """

    def __init__(self, directory: os.PathLike[str] | str) -> None:
        self.directory = Path(directory)
        if not self.directory.is_dir():
            msg = f"corpus folder {self.directory} not found"
            raise FileNotFoundError(msg)
        self.session_dirs = sorted(p for p in self.directory.iterdir() if SessionStore(p).exists())
        if not self.session_dirs:
            msg = f"{self.directory} holds no session directory (no */metadata.json)"
            raise FileNotFoundError(msg)

    @property
    def session_ids(self) -> list[str]:
        return [p.name for p in self.session_dirs]

    def sessions(self) -> pd.DataFrame:
        """One row per session: id, status, recording, duration, segments (from each ``metadata.json``)."""
        rows = []
        for directory in self.session_dirs:
            metadata = SessionStore(directory).read_metadata()
            rows.append(
                {
                    "session_id": metadata["session_id"],
                    "status": metadata.get("status"),
                    "recording": metadata["audio"]["path"],
                    "duration": metadata["audio"].get("duration"),
                    "directory": str(directory),
                }
            )
        return pd.DataFrame(rows)

    def view(self, *, words: bool = False) -> pd.DataFrame:
        """Every session's merged view (base results plus corrections) in one DataFrame.

        Rows carry their ``session_id``; the index is ``session_id/segment_id``. Word
        timings are left out unless ``words=True`` (they are most of the memory).
        """
        return pd.concat([session_view(directory, words=words) for directory in self.session_dirs])

    def dask_view(self, *, words: bool = False) -> dd.DataFrame:
        """:meth:`view` as a ``dask.dataframe``, one partition per session, for corpora too large for memory."""
        meta = session_view(self.session_dirs[0], words=words).iloc[:0]
        parts = [dask.delayed(session_view)(directory, words=words) for directory in self.session_dirs]
        with dask.config.set({"dataframe.convert-string": False}):  # keep lists and tuples as they are
            return dd.from_delayed(parts, meta=meta)

    def export(self, fmt: str, out: os.PathLike[str] | str, *, selection: str = "all") -> list[Path]:
        """Every session's corrected view as ``<out>/<session_id>[-ic|-ooc].<fmt>``; the files written."""
        target = Path(out)
        suffix = "" if selection == "all" else f"-{selection}"
        written = []
        for directory in self.session_dirs:
            session = Session.open(directory)
            try:
                written.append(session.export(fmt, target / f"{session.session_id}{suffix}.{fmt}", selection=selection))
            finally:
                session.close()
        return written

    def preview_reclassify(self, *, client: Client | None = None, **options: Any) -> pd.DataFrame:
        """What reclassifying every session would give, changing nothing; one task per session on ``client``.

        ``options`` are those of :meth:`Session.preview_reclassify` (``classifier=``, ``variant=``...).
        """
        frames = self._map(_preview, client, options)
        return pd.concat(frames)

    def reclassify(self, *, user: str, client: Client | None = None, **options: Any) -> pd.DataFrame:
        """Reclassify every session (each keeps its rerun in its history); one row per rerun."""
        return pd.DataFrame(self._map(_reclassify, client, options | {"user": user}))

    def manifest(self) -> pd.DataFrame:
        """The latest ``batch.jsonl`` record of each session (see :func:`livereview.batch`)."""
        return manifest_rows(self.directory)

    def _map(self, task: Any, client: Client | None, options: dict[str, Any]) -> list[Any]:
        paths = [str(p) for p in self.session_dirs]
        if client is None:
            return [task(path, options) for path in paths]
        futures = client.map(task, paths, options=options, pure=False)
        return client.gather(futures)

    def __repr__(self) -> str:
        return f"<Corpus {self.directory}: {len(self.session_dirs)} sessions>"


def session_view(directory: os.PathLike[str] | str, *, words: bool = False) -> pd.DataFrame:
    """One session's merged view, indexed ``session_id/segment_id`` (a partition of the corpus)."""
    session = Session.open(directory)
    try:
        view = session.view()
    finally:
        session.close()
    if not words:
        view = view.drop(columns=["words"])
    view.index = pd.Index(view["session_id"] + "/" + view["segment_id"], name=None)
    return view


def _preview(directory: str, options: dict[str, Any]) -> pd.DataFrame:
    session = Session.open(directory)
    try:
        frame = session.preview_reclassify(progress=False, **options)
    finally:
        session.close()
    return frame.assign(session_id=session.session_id)


def _reclassify(directory: str, options: dict[str, Any]) -> dict[str, Any]:
    session = Session.open(directory)
    try:
        rerun = session.reclassify(progress=False, segments=None, chunks=sorted(session.completed_chunks), **options)
    finally:
        session.close()
    return {"session_id": session.session_id} | rerun.summary()
