"""What runs on a Dask worker: the models, loaded once per worker, and one recording per task.

:class:`ModelCache` is a :class:`distributed.WorkerPlugin`: registered once with the
client, it lives on every worker, loads the models a task needs the first time (under
a lock: a worker's threads share them) and frees them when the worker closes. A task
(:func:`process_recording`) takes a recording's path and returns a small record; the
audio and the results stay on the worker's disk, in the session directory.
"""

from __future__ import annotations

import datetime as dt
import gc
import json
import logging
import threading
import time
from typing import Any

from distributed import WorkerPlugin, get_worker

from livereview.core.options import RunOptions
from livereview.core.threads import ThreadPlan
from livereview.corpus.inputs import BatchItem
from livereview.review.checks import InputError, build_options, plan_run
from livereview.review.run import run_session
from livereview.review.session import Session
from livereview.stages.pipeline import Models

logger = logging.getLogger(__name__)

PLUGIN_NAME = "livereview-models"
#: The Dask event topic a task reports its progress on (audio seconds processed).
PROGRESS_TOPIC = "livereview-progress"
#: Arguments of :func:`livereview.run` a batch passes on to every run (and a manifest row may set).
RUN_OPTION_NAMES = (
    "num_speakers",
    "min_speakers",
    "max_speakers",
    "whisper_model",
    "language",
    "device",
    "diarization_pipeline",
    "hub_token",
    "chunk_length",
    "classifier",
    "party",
)


class ModelCache(WorkerPlugin):
    """The models of each option set used on this worker, loaded on first use and freed on teardown."""

    idempotent = True
    name = PLUGIN_NAME

    def setup(self, worker: Any) -> None:
        """Nothing loads here (this runs on the worker's event loop): models load on first use.

        The cache and its lock are made here, on the worker: the plugin travels there pickled.
        """
        self._models: dict[str, Models] = {}
        self._lock = threading.Lock()

    def models(self, options: RunOptions, plan: ThreadPlan) -> Models:
        """The loaded models for ``options`` and ``plan``'s threads (loaded now when this worker has not yet)."""
        config = options.to_config()
        chosen = {name: config[name] for name in ("transcribe", "diarize", "classifier")} | {"threads": plan.to_dict()}
        key = json.dumps(chosen, sort_keys=True)
        with self._lock:
            if key not in self._models:
                logger.info("worker loads the models for %s", key)
                self._models[key] = Models.load(options, plan)
            return self._models[key]

    @property
    def loaded(self) -> int:
        """How many option sets have their models loaded."""
        return len(self._models)

    def teardown(self, worker: Any) -> None:
        self._models.clear()
        gc.collect()


def process_recording(
    item: BatchItem, out_dir: str, shared_options: dict[str, Any], threads: int | None = None
) -> dict[str, Any]:
    """Run one recording into its session directory on this worker; the manifest record of the outcome.

    A recording that cannot run (missing, corrupt, empty, bad options) ends as a record
    with status ``failed`` and its error; anything else that goes wrong is raised, so
    Dask retries the task (the retry resumes the session).
    """
    started = time.time()
    record: dict[str, Any] = {"session_id": item.session_id, "path": str(item.path), "worker": _address()}
    built, problems = build_options(**item.run_options(shared_options))
    try:
        plan = plan_run(item.path, out_dir=out_dir, options=built, session_id=item.session_id, problems=problems)
    except InputError as error:
        return record | _timing(started) | {"status": "failed", "error": "; ".join(error.problems)}
    session = Session.create(plan.info.path, session_id=plan.session_id, out_dir=out_dir, options=plan.options)
    worker = get_worker()
    reporter = _Progress(worker, item.session_id)
    session.events.subscribe(reporter, name="batch-progress")
    try:
        threads_plan = ThreadPlan.for_run(threads)
        models = worker.plugins[PLUGIN_NAME].models(plan.options, threads_plan)
        run_session(session, progress=False, models=models, threads=threads_plan)
        metrics = session.metrics()
        return (
            record
            | _timing(started)
            | {
                "status": session.status,
                "duration": session.metadata["audio"]["duration"],
                "segments": metrics.get("segments"),
                "real_time_factors": metrics.get("real_time_factors", {}),
                "directory": str(session.directory),
                "error": None,
            }
        )
    finally:
        session.close()


class _Progress:
    """Tells the client, through a Dask event topic, how far into its recording a task has got."""

    def __init__(self, worker: Any, session_id: str) -> None:
        self.worker = worker
        self.session_id = session_id

    def __call__(self, event: Any) -> None:
        if event.kind == "chunk_completed" and event.position is not None:
            self.worker.log_event(PROGRESS_TOPIC, {"session_id": self.session_id, "position": event.position})


def _timing(started: float) -> dict[str, Any]:
    ended = time.time()
    return {
        "started": dt.datetime.fromtimestamp(started, dt.UTC).isoformat(timespec="seconds"),
        "ended": dt.datetime.fromtimestamp(ended, dt.UTC).isoformat(timespec="seconds"),
        "seconds": round(ended - started, 3),
    }


def _address() -> str | None:
    try:
        return get_worker().address
    except ValueError:
        return None
