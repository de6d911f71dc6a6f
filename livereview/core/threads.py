"""How many threads the model libraries may use: the cores this process may run on, not the host's.

A process restricted by CPU affinity (``taskset``), a container's CPU quota (cgroup
``cpu.max``), or a batch worker given a share of the machine (``LIVEREVIEW_THREADS``)
must not start a thread per host core: torch's and CTranslate2's threads then spin
waiting for each other and everything slows down badly. Every stage takes its thread
count from here:

- :func:`thread_budget`: the cores this process may use (or ``LIVEREVIEW_THREADS``);
- :class:`ThreadPlan`: how a run splits them between transcription, which runs ahead
  on its own thread while the machine is otherwise idle, and diarization and
  classification;
- :func:`adapted_threads`: fewer torch threads, chunk by chunk, while other processes
  keep the cores busy (:func:`busy_elsewhere` measures them; the stages apply them with
  :func:`livereview.stages.threads.torch_threads`);
- :func:`quiet_openmp`: OpenMP threads that sleep instead of spinning while they wait;
- :func:`yield_priority`: a run's threads one priority step below other work, so a
  neighbour keeps its share of a busy machine (an idle one runs the run as fast).

Usage
-----
>>> thread_budget() >= 1
True
>>> ThreadPlan(budget=2, overlap=True).transcribe
1
"""

from __future__ import annotations

import math
import os
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

#: Environment variable that sets the thread budget (a batch worker's share, or a user's choice).
THREADS_VARIABLE = "LIVEREVIEW_THREADS"
#: Environment variable that sets the niceness a run's threads take at least (default 1; 0 leaves it).
NICENESS_VARIABLE = "LIVEREVIEW_NICENESS"
_TASKS = Path("/proc/self/task")
_CGROUP_CPU_MAX = Path("/sys/fs/cgroup/cpu.max")
_PROC_STAT = Path("/proc/stat")
#: Busy cores are measured over at least this many seconds (a shorter interval reuses the last figure).
_MIN_INTERVAL = 0.5
#: Transcription runs ahead beside the analysis only while at least this many of the budget's cores are free.
OVERLAP_FREE_CORES = 1.5


def quiet_openmp() -> None:
    """Let OpenMP threads sleep while they wait, instead of spinning (unless the environment says otherwise).

    torch and CTranslate2 both use GNU OpenMP, which reads this when the library loads:
    :mod:`livereview.stages` calls it on import, before any model library is imported.
    A spinning thread takes a core from every other process while it waits; on a shared
    machine that made a run 20 to 60 times slower.
    """
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def yield_priority() -> int:
    """Give every thread of this process a niceness of at least ``LIVEREVIEW_NICENESS`` (default 1); returns it.

    A run is background work: one step of niceness changes nothing while the machine is
    otherwise idle, and beside a busy torch process on two cores it shares the machine
    more evenly (on the demo, one run each: the run 2.18 times slower than alone and
    the neighbour 2.68 times at niceness 0; 2.28 and 2.42 at 1; 2.54 and 2.17 at 2).
    Threads started later inherit it. Niceness never goes back down: raising a
    thread's priority again needs privileges, so threads already nicer are left alone.

    Raises
    ------
    ValueError
        ``LIVEREVIEW_NICENESS`` is not a whole number from 0 to 19.
    """
    value = os.environ.get(NICENESS_VARIABLE, "").strip() or "1"
    niceness = int(value) if value.isdigit() else -1
    if not 0 <= niceness <= 19:
        msg = f"{NICENESS_VARIABLE} must be a whole number from 0 to 19; got {value!r}"
        raise ValueError(msg)
    if not hasattr(os, "setpriority"):  # not a Unix: the scheduler's default stays
        return niceness
    threads = [int(task.name) for task in _TASKS.iterdir()] if _TASKS.is_dir() else [0]
    for thread in threads:
        try:
            if os.getpriority(os.PRIO_PROCESS, thread) < niceness:
                os.setpriority(os.PRIO_PROCESS, thread, niceness)
        except OSError:  # the thread ended meanwhile
            continue
    return niceness


def available_cores() -> int:
    """Cores this process may use: its CPU affinity, bounded by a cgroup CPU quota when there is one."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # no affinity on this platform
        cores = os.cpu_count() or 1
    try:
        quota, period = _CGROUP_CPU_MAX.read_text(encoding="utf-8").split()[:2]
    except (OSError, ValueError):
        return cores
    if quota == "max":
        return cores
    return max(1, min(cores, math.floor(int(quota) / int(period))))


def thread_budget(threads: int | None = None) -> int:
    """Threads the model libraries may use here: ``threads`` when given, else ``LIVEREVIEW_THREADS``, else the cores.

    Raises
    ------
    ValueError
        ``threads`` or ``LIVEREVIEW_THREADS`` is not a positive whole number.
    """
    if threads is not None:
        if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
            msg = f"threads must be a positive whole number; got {threads!r}"
            raise ValueError(msg)
        return threads
    value = os.environ.get(THREADS_VARIABLE)
    if value is None or not value.strip():
        return available_cores()
    try:
        budget = int(value)
    except ValueError:
        budget = 0
    if budget < 1:
        msg = f"{THREADS_VARIABLE} must be a positive whole number of threads; got {value!r}"
        raise ValueError(msg)
    return budget


@dataclass(frozen=True)
class ThreadPlan:
    """How a run spends its thread budget.

    With two threads or more, transcription of the next chunk runs on its own thread
    while the current chunk is diarized and classified (``overlap``): half the budget
    each, rounded in favour of diarization; chunk by chunk, only while other processes
    leave the cores free (:meth:`overlap_now`), else the stages take turns. With one
    thread, stages run one after the other and each gets it. Single-threaded stages
    side by side beat two-threaded stages in turn on two cores: a model's threads no
    longer wait for each other at every operation, on a busy machine least of all.

    Attributes
    ----------
    budget : int
        Threads in all (see :func:`thread_budget`).
    overlap : bool
        Transcribe ahead on a thread of its own.
    """

    budget: int
    overlap: bool

    @classmethod
    def for_run(cls, threads: int | None = None, *, overlap: bool = True) -> ThreadPlan:
        """The plan for ``threads`` (default: :func:`thread_budget`); no overlap on a single thread."""
        budget = thread_budget(threads)
        return cls(budget=budget, overlap=overlap and budget >= 2)

    @property
    def transcribe(self) -> int:
        """CTranslate2 threads for transcription (fixed when the model loads)."""
        return self.budget // 2 if self.overlap else self.budget

    @property
    def analyse(self) -> int:
        """Torch threads for diarization and classification when the machine is otherwise idle."""
        return self.budget - self.transcribe if self.overlap else self.budget

    def overlap_now(self) -> bool:
        """Whether the next chunk is transcribed beside this one's analysis now: not while the machine is busy.

        With other processes on the cores, a thread of ours running ahead takes a core
        from them, and they and we both slow down more than by taking turns (on two
        cores beside a busy torch process: it 3.7 times slower, sharing the machine).
        """
        return self.overlap and self.budget - busy_elsewhere() >= OVERLAP_FREE_CORES

    def analysis_threads(self, *, beside_transcription: bool = False) -> int:
        """Torch threads for a chunk's diarization and classification: fewer while the machine is busy.

        ``beside_transcription``: the next chunk is being transcribed meanwhile (its
        threads are left to it).
        """
        if beside_transcription:
            return adapted_threads(self.analyse, reserved=self.transcribe, budget=self.budget)
        return adapted_threads(self.budget, budget=self.budget)

    def to_dict(self) -> dict[str, Any]:
        """The plan as stored in a run's metrics."""
        return asdict(self) | {"transcribe": self.transcribe, "analyse": self.analyse}


class _BusyCores:
    """Cores that other processes kept busy, from ``/proc/stat`` and this process's own CPU time."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last: tuple[float, float, float] | None = None
        self._busy = 0.0

    def measure(self) -> float:
        with self._lock:
            sample = self._sample()
            if sample is None:
                return 0.0
            if self._last is None:  # nothing to compare with yet: measure over a tenth of a second
                self._last = sample
                time.sleep(0.1)
                sample = self._sample() or sample
            elif sample[0] - self._last[0] < _MIN_INTERVAL:
                return self._busy
            wall, busy, own = (now - before for now, before in zip(sample, self._last, strict=True))
            if wall > 0:
                self._busy = max(0.0, (busy - own) / wall)
                self._last = sample
            return self._busy

    @staticmethod
    def _sample() -> tuple[float, float, float] | None:
        """(wall seconds, busy CPU seconds on this process's cores, this process's CPU seconds)."""
        try:
            cores = os.sched_getaffinity(0)
            lines = _PROC_STAT.read_text(encoding="ascii").splitlines()
        except (AttributeError, OSError):  # not Linux
            return None
        ticks = os.sysconf("SC_CLK_TCK")
        busy = 0
        for line in lines:
            name, *fields = line.split()
            if not name.startswith("cpu") or name == "cpu" or int(name[3:]) not in cores:
                continue
            values = [int(v) for v in fields[:8]]  # user nice system idle iowait irq softirq steal
            busy += sum(values) - values[3] - values[4]
        return time.monotonic(), busy / ticks, time.process_time()


_busy_cores = _BusyCores()


def busy_elsewhere() -> float:
    """Cores (of those this process may use) that other processes kept busy lately; 0.0 where unknown.

    Measured between calls, over at least half a second (the first call waits a tenth
    of a second to measure); this process's own threads are not counted.
    """
    return _busy_cores.measure()


def adapted_threads(wanted: int, *, reserved: int = 0, budget: int | None = None) -> int:
    """Threads to use now for work that would like ``wanted``: fewer while other processes keep the cores busy.

    ``reserved`` threads of this process run beside the work (they are not counted as
    busy elsewhere). On two cores with another process computing on both, a torch model
    running two threads was about four times slower than on one: its threads spin
    waiting for each other whenever one of them loses its core.
    """
    free = thread_budget(budget) - reserved - busy_elsewhere()
    return max(1, min(wanted, math.floor(free + 0.5)))
