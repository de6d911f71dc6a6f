"""Threads that fit the machine, and transcription overlapped with diarization."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import threading
import time

import pytest

import livereview
from livereview.core.threads import ThreadPlan, adapted_threads, available_cores, busy_elsewhere, thread_budget
from livereview.review.checks import InputError
from livereview.review.run import run_session

PLAN_SCRIPT = """
import json, os, sys
os.sched_setaffinity(0, {int(core) for core in sys.argv[1].split(",")})
import torch
from livereview.core.threads import ThreadPlan, available_cores
from livereview.stages.threads import torch_threads
plan = ThreadPlan.for_run()
with torch_threads(plan.analysis_threads()):
    analysis = torch.get_num_threads()
print(json.dumps({"cores": available_cores(), "plan": plan.to_dict(), "torch": analysis}))
"""


def _plan_in_subprocess(cores: set[int], **environment: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "LIVEREVIEW_THREADS"} | environment
    result = subprocess.run(
        [sys.executable, "-c", PLAN_SCRIPT, ",".join(map(str, sorted(cores)))],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=True,
    )
    return json.loads(result.stdout)


def test_one_core_of_affinity_gives_one_thread_and_no_overlap() -> None:
    one_core = {min(os.sched_getaffinity(0))}
    chosen = _plan_in_subprocess(one_core)
    assert chosen["cores"] == 1
    assert chosen["plan"] == {"budget": 1, "overlap": False, "transcribe": 1, "analyse": 1}
    assert chosen["torch"] == 1


def test_the_budget_is_split_between_transcription_and_diarization() -> None:
    chosen = _plan_in_subprocess(os.sched_getaffinity(0), LIVEREVIEW_THREADS="5")
    assert chosen["plan"] == {"budget": 5, "overlap": True, "transcribe": 2, "analyse": 3}
    assert ThreadPlan.for_run(2).to_dict() == {"budget": 2, "overlap": True, "transcribe": 1, "analyse": 1}
    assert ThreadPlan.for_run(2, overlap=False).transcribe == 2


@pytest.mark.parametrize("threads", [0, -2, 1.5, "2", True])
def test_a_thread_count_must_be_a_positive_whole_number(threads) -> None:
    with pytest.raises(ValueError, match="threads must be a positive whole number"):
        thread_budget(threads)


def test_run_refuses_a_bad_thread_count_before_writing(tmp_path, sample) -> None:
    with pytest.raises(InputError, match="threads must be a positive whole number; got 0"):
        livereview.run(sample["audio"], out_dir=tmp_path, threads=0, progress=False)
    assert not any(tmp_path.iterdir())


def test_openmp_threads_sleep_while_they_wait_unless_told_otherwise() -> None:
    script = "import os, livereview.stages; print(os.environ['OMP_WAIT_POLICY'])"
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    default = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, check=True)
    chosen = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env | {"OMP_WAIT_POLICY": "ACTIVE"}
    )
    assert default.stdout.strip() == "PASSIVE"
    assert chosen.stdout.strip() == "ACTIVE"


def test_fewer_threads_while_other_processes_keep_the_cores_busy() -> None:
    cores = available_cores()
    burn = "import time\nend = time.time() + 4\nwhile time.time() < end: pass"
    burners = [subprocess.Popen([sys.executable, "-c", burn]) for _ in range(cores)]
    try:
        busy_elsewhere()
        time.sleep(1.5)
        busy = busy_elsewhere()
        threads = adapted_threads(cores, budget=cores)
        time.sleep(0.6)
        overlap_while_busy = ThreadPlan(cores, overlap=True).overlap_now()
    finally:
        for burner in burners:
            burner.wait()
    busy_elsewhere()
    time.sleep(0.6)
    assert busy >= 0.75 * cores, f"{busy:.2f} cores busy elsewhere, {cores} burned"
    assert not overlap_while_busy  # transcription takes its turn instead of running ahead
    assert ThreadPlan(cores, overlap=True).overlap_now() == (cores >= 2)
    assert threads == 1


class _BusyEveryOtherChunk(ThreadPlan):
    """A plan on a machine that is busy every other chunk: transcription runs ahead, then takes its turn."""

    asked = itertools.count()

    def overlap_now(self) -> bool:
        return next(self.asked) % 2 == 0


PRIORITY_SCRIPT = """
import json, os, threading
from livereview.core.threads import yield_priority
def niceness():
    return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
asked, seen = threading.Event(), {}
def earlier():  # a thread started before, such as a model library's pool
    asked.wait()
    seen["earlier"] = niceness()
def nicer():  # a thread already nicer than asked is left as it is
    os.setpriority(os.PRIO_PROCESS, 0, 7)
    asked.wait()
    seen["nicer"] = niceness()
threads = [threading.Thread(target=earlier), threading.Thread(target=nicer)]
for thread in threads:
    thread.start()
seen["before"] = niceness()
try:
    seen["returned"] = yield_priority()
except ValueError as error:
    seen["error"] = str(error)
seen["main"] = niceness()
later = threading.Thread(target=lambda: seen.update(later=niceness()))
later.start()
later.join()
asked.set()
for thread in threads:
    thread.join()
print(json.dumps(seen))
"""


def _priorities(**environment: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "LIVEREVIEW_NICENESS"} | environment
    result = subprocess.run(
        [sys.executable, "-c", PRIORITY_SCRIPT], capture_output=True, text=True, env=env, timeout=60, check=True
    )
    return json.loads(result.stdout)


def test_a_run_yields_one_priority_step_to_other_work_on_every_thread() -> None:
    base = os.getpriority(os.PRIO_PROCESS, 0)  # this process may be nicer already: an earlier test ran a pipeline
    assert base <= 3  # room for the figures below
    default = _priorities()
    assert default["before"] == base
    assert default["returned"] == 1
    assert default["main"] == default["earlier"] == default["later"] == max(base, 1)
    assert default["nicer"] == 7
    chosen = _priorities(LIVEREVIEW_NICENESS=str(base + 3))
    assert chosen["main"] == chosen["earlier"] == chosen["later"] == base + 3
    assert chosen["nicer"] == 7
    assert _priorities(LIVEREVIEW_NICENESS="0")["main"] == base
    refused = _priorities(LIVEREVIEW_NICENESS="-5")
    assert refused["error"] == "LIVEREVIEW_NICENESS must be a whole number from 0 to 19; got '-5'"
    assert refused["main"] == base


@pytest.mark.slow
def test_overlapped_stages_give_the_same_results_and_events_as_sequential(tmp_path, sample) -> None:
    """The runs use one thread per stage, so only the overlap differs (the third one on a machine busy now and then)."""
    runs = {}
    options = livereview.RunOptions(
        chunk=livereview.ChunkOptions(length=10.0, min_length=5.0, max_length=15.0),
        diarize=livereview.DiarizeOptions(num_speakers=2),
    )
    plans = {
        "overlapped": ThreadPlan(2, overlap=True),
        "sequential": ThreadPlan(1, overlap=False),
        "busy now and then": _BusyEveryOtherChunk(2, overlap=True),
    }
    for name, plan in plans.items():
        session = livereview.Session.create(sample["audio"], session_id=name, out_dir=tmp_path, options=options)
        recorder = livereview.RecordingSubscriber()
        session.events.subscribe(recorder, name="recorder")
        run_session(session, progress=False, threads=plan)
        assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) >= 1  # the run yields to other work
        session.events.close()
        told = [(e.kind, e.stage, e.chunk_id, e.status, e.model, e.position, e.segments) for e in recorder.events]
        runs[name] = (session.segments, told, session.metrics())
        session.close()
    (overlapped, overlapped_events, metrics), (sequential, sequential_events, _), (mixed, mixed_events, _) = (
        runs.values()
    )
    assert metrics["chunks"] >= 3
    columns = ["segment_id", "start", "end", "text", "speaker_id", "ic_ooc", "character_tag", "status"]
    assert overlapped[columns].equals(sequential[columns])
    assert mixed[columns].equals(sequential[columns])
    assert overlapped_events == sequential_events == mixed_events
    assert next(_BusyEveryOtherChunk.asked) == metrics["chunks"]  # asked once per chunk
    stages = metrics["stage_seconds"]
    assert metrics["threads"] == {"budget": 2, "overlap": True, "transcribe": 1, "analyse": 1}
    # the transcription of each next chunk ran while the current one was diarized: stage time exceeds wall time
    assert sum(stages.values()) > metrics["real_time_factors"]["total"] * metrics["audio_seconds"]
