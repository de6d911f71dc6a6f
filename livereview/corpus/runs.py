"""Batch runs on Dask: many recordings, each into its own session directory, on a cluster or this machine.

:func:`batch` checks the batch's options, skips the sessions already finished, submits
one task per recording (:func:`livereview.corpus.worker.process_recording`) with
retries, follows them with progress bars over recordings and audio hours, and records
each outcome in ``<out_dir>/batch.jsonl``. A recording that cannot run becomes a
failed row with its error; the others go on. A worker that dies mid-recording is
replaced and the task retried: the session resumes from its last completed chunk.

Usage
-----
>>> rows = livereview.batch("recordings/", out_dir="output")                        # doctest: +SKIP
>>> rows = livereview.batch(["a.flac", "b.flac"], client=client, num_speakers=4)    # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import logging
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
from distributed import Client, LocalCluster, as_completed
from tqdm.auto import tqdm

from livereview.core.jsonl import append_jsonl, read_jsonl
from livereview.core.saved import FINISHED
from livereview.core.threads import THREADS_VARIABLE, available_cores, thread_budget
from livereview.corpus.inputs import BatchItem, Recordings, batch_items
from livereview.corpus.worker import PROGRESS_TOPIC, RUN_OPTION_NAMES, ModelCache, process_recording
from livereview.review.checks import InputError, build_options
from livereview.stages.audio import AudioError, probe
from livereview.store.results import SessionStore

logger = logging.getLogger(__name__)

MANIFEST_NAME = "batch.jsonl"
#: Memory one worker needs for the default models and a long recording's results, in bytes.
WORKER_MEMORY = 3 * 1024**3
#: Columns of the DataFrame :func:`batch` returns (and of each ``batch.jsonl`` line).
BATCH_COLUMNS = (
    "session_id",
    "path",
    "status",
    "duration",
    "segments",
    "real_time_factors",
    "started",
    "ended",
    "seconds",
    "worker",
    "directory",
    "error",
)


def batch(
    recordings: Recordings,
    out_dir: os.PathLike[str] | str = "output",
    client: Client | None = None,
    *,
    scheduler: str | None = None,
    workers: int | None = None,
    retries: int = 2,
    progress: bool = True,
    threads: int | None = None,
    **run_options: Any,
) -> pd.DataFrame:
    """Run many recordings, each into a session directory exactly as :func:`livereview.run` makes it.

    Parameters
    ----------
    recordings : path, glob, folder, list of paths, CSV manifest or DataFrame
        What to run (see :mod:`livereview.corpus.inputs`).
    out_dir : path
        Where the session directories and ``batch.jsonl`` go.
    client : distributed.Client, optional
        Run on this cluster; otherwise on ``scheduler``, else on a ``LocalCluster`` sized
        to this machine (see :func:`local_cluster`).
    scheduler : str, optional
        A scheduler's address (``tcp://host:8786``) or scheduler file to connect to.
    workers : int, optional
        Workers of the local cluster (by default as many as the cores and memory allow).
    retries : int
        Times a task is run again after its worker died.
    progress : bool
        Show progress bars over recordings and audio hours.
    threads : int, optional
        Threads each recording's run may use (default: the local cluster's share of the
        cores per worker; on another cluster, what each worker's process may use).
    **run_options
        Options of :func:`livereview.run` for every recording (a manifest row overrides
        ``num_speakers``, ``party`` and ``language``).

    Returns
    -------
    pandas.DataFrame
        One row per recording (:data:`BATCH_COLUMNS`): ``status`` is ``complete``,
        ``partial``, ``failed`` (with ``error``) or, for a session finished before, what it
        was, with ``skipped`` True.

    Raises
    ------
    InputError
        Unknown or invalid run options, or recordings that name no file; nothing runs.
    """
    unknown = sorted(set(run_options) - set(RUN_OPTION_NAMES))
    _, problems = build_options(**{k: v for k, v in run_options.items() if k in RUN_OPTION_NAMES})
    problems += [f"unknown run option {name!r}; batch takes {RUN_OPTION_NAMES}" for name in unknown]
    if threads is not None:
        try:
            thread_budget(threads)
        except ValueError as error:
            problems.append(str(error))
    if problems:
        raise InputError(problems)
    items = batch_items(recordings)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    manifest = out / MANIFEST_NAME
    rows: dict[str, dict[str, Any]] = {item.session_id: _finished_row(item, out) for item in items}
    todo = [item for item in items if rows[item.session_id] is None]
    with _cluster(client, scheduler, workers, len(todo), threads) as connected:
        if todo:
            rows |= _run_all(connected, todo, out, run_options, threads, retries, progress, manifest)
    return pd.DataFrame([rows[item.session_id] for item in items], columns=[*BATCH_COLUMNS, "skipped"])


def local_cluster(
    workers: int | None = None, *, recordings: int | None = None, threads: int | None = None
) -> LocalCluster:
    """A ``LocalCluster`` sized to this machine: worker processes with one task thread each.

    Each worker gets ``threads`` for its model libraries (``LIVEREVIEW_THREADS``), by
    default an equal share of the cores, so torch and CTranslate2 threads do not
    oversubscribe them.
    """
    cores = available_cores()
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    count = workers or max(1, min(cores, memory // WORKER_MEMORY, recordings or cores))
    threads = threads or max(1, cores // count)
    environment = {THREADS_VARIABLE: str(threads), "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    return LocalCluster(n_workers=count, threads_per_worker=1, processes=True, dashboard_address=":0", env=environment)


def manifest_rows(out_dir: os.PathLike[str] | str) -> pd.DataFrame:
    """The latest ``batch.jsonl`` line of each session of ``out_dir``."""
    latest = {row["session_id"]: row for row in read_jsonl(Path(out_dir) / MANIFEST_NAME)}
    return pd.DataFrame(list(latest.values()), columns=[*BATCH_COLUMNS, "skipped"])


@contextlib.contextmanager
def _cluster(
    client: Client | None, scheduler: str | None, workers: int | None, recordings: int, threads: int | None
) -> Iterator[Client]:
    if client is not None:
        yield client
        return
    if scheduler is not None:
        path = Path(scheduler)
        with Client(scheduler_file=str(path)) if path.is_file() else Client(scheduler) as connected:
            yield connected
        return
    with local_cluster(workers, recordings=recordings, threads=threads) as cluster, Client(cluster) as connected:
        yield connected


def _run_all(
    client: Client,
    items: list[BatchItem],
    out: Path,
    run_options: dict[str, Any],
    threads: int | None,
    retries: int,
    progress: bool,
    manifest: Path,
) -> dict[str, dict[str, Any]]:
    """Submit a task per recording and gather their records as they finish."""
    client.register_plugin(ModelCache())
    seconds = {item.session_id: _duration(item.path) for item in items}
    logger.info("batch of %d recordings on %s (dashboard %s)", len(items), client, client.dashboard_link)
    recordings_bar = tqdm(total=len(items), unit="rec", desc="recordings", disable=not progress, position=0)
    audio_bar = tqdm(
        total=round(sum(seconds.values()) / 3600, 2), unit="h", desc="audio hours", disable=not progress, position=1
    )
    processed: dict[str, float] = {}

    def advanced(event: tuple[float, dict[str, Any]]) -> None:
        _, report = event
        processed[report["session_id"]] = max(processed.get(report["session_id"], 0.0), report["position"])
        audio_bar.n = round(sum(processed.values()) / 3600, 2)
        audio_bar.refresh()

    client.subscribe_topic(PROGRESS_TOPIC, advanced)
    token = uuid.uuid4().hex[:8]
    futures = {
        client.submit(
            process_recording,
            item,
            str(out),
            run_options,
            threads,
            retries=retries,
            pure=False,
            key=f"livereview-{item.session_id}-{token}",
        ): item
        for item in items
    }
    rows = {}
    try:
        for future in as_completed(list(futures)):
            item = futures[future]
            try:
                row = future.result()
            except Exception as error:  # the worker died more times than allowed, or the task itself failed
                row = {"session_id": item.session_id, "path": str(item.path), "status": "failed"}
                row["error"] = f"{type(error).__name__}: {error}"
            row["skipped"] = False
            append_jsonl(manifest, [row], sync=True)
            rows[item.session_id] = row
            processed[item.session_id] = seconds[item.session_id]
            audio_bar.n = round(sum(processed.values()) / 3600, 2)
            recordings_bar.update()
            recordings_bar.set_postfix(failed=sum(r["status"] == "failed" for r in rows.values()))
    finally:
        client.unsubscribe_topic(PROGRESS_TOPIC)
        recordings_bar.close()
        audio_bar.close()
    return rows


def _finished_row(item: BatchItem, out: Path) -> dict[str, Any] | None:
    """The row of a session a run finished before (skipped now), or None when it has work left."""
    store = SessionStore(out / item.session_id)
    if not store.exists():
        return None
    metadata = store.read_metadata()
    if metadata.get("status") not in FINISHED:
        return None  # partial run: it resumes
    return {
        "session_id": item.session_id,
        "path": str(item.path),
        "status": metadata["status"],
        "duration": metadata["audio"].get("duration"),
        "directory": str(store.directory),
        "error": None,
        "skipped": True,
    }


def _duration(path: Path) -> float:
    try:
        return probe(path).duration
    except (FileNotFoundError, IsADirectoryError, AudioError):
        return 0.0
