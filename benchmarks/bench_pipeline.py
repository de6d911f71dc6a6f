"""Pipeline benchmark: real-time factors, time to the first segment event, live-event overhead.

Run with ``.venv/bin/python benchmarks/bench_pipeline.py``. Models are loaded once,
before anything is timed. Prints one figure per line, with the target beside it.
"""

from __future__ import annotations

import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import livereview
from livereview.core import events
from livereview.demo import demo_audio_path, pyannote_sample_paths
from livereview.stages.pipeline import Models, run_pipeline

REPEATS = int(os.environ.get("BENCH_REPEATS", "3"))


def timed_run(audio: Path, options: livereview.RunOptions, models: Models, *, live: bool) -> tuple[float, float, dict]:
    """Run once in a fresh directory: (wall seconds, seconds to first segment event, metrics)."""
    with tempfile.TemporaryDirectory() as out:
        session = livereview.Session.create(audio, out_dir=out, options=options)
        session.events.enabled = live
        recorder = livereview.RecordingSubscriber()
        session.events.subscribe(recorder, name="bench")
        started = time.time()
        run_pipeline(session, progress=False, models=models)
        wall = time.time() - started
        session.close()
        first = next((e.timestamp - started for e in recorder.events if e.kind == events.SEGMENTS), float("nan"))
        return wall, first, session.metrics()


def main() -> None:
    machine = platform.processor() or platform.machine()
    print(f"machine: {machine}, {os.cpu_count()} cores, Python {platform.python_version()}")
    recordings = {
        "demo": (demo_audio_path(), livereview.DiarizeOptions(num_speakers=4)),
        "sample": (pyannote_sample_paths()["audio"], livereview.DiarizeOptions(num_speakers=2)),
    }
    for name, (audio, diarize) in recordings.items():
        options = livereview.RunOptions(transcribe=livereview.TranscribeOptions(language="en"), diarize=diarize)
        started = time.perf_counter()
        models = Models.load(options)
        print(f"[{name}] models loaded in {time.perf_counter() - started:.1f} s")
        timed_run(audio, options, models, live=True)  # warm-up
        with_events, without_events, firsts = [], [], []
        for _ in range(REPEATS):
            wall, first, metrics = timed_run(audio, options, models, live=True)
            with_events.append(wall)
            firsts.append(first)
            without_events.append(timed_run(audio, options, models, live=False)[0])
        factors = metrics["real_time_factors"]
        counts = f"{metrics['chunks']} chunks, {metrics['segments']} segments"
        print(f"[{name}] audio {metrics['audio_seconds']:.1f} s, {counts}")
        for stage in ("transcribe", "diarize", "classify", "global", "total"):
            print(f"[{name}] real-time factor {stage:>10}: {factors.get(stage, float('nan')):.4f}")
        print(f"[{name}] first segment event after {statistics.median(firsts):.2f} s (target <= 5 s)")
        ratio = statistics.median(with_events) / statistics.median(without_events)
        print(
            f"[{name}] live events overhead: {100 * (ratio - 1):+.2f}% "
            f"(median of {REPEATS}: {statistics.median(with_events):.2f} s with emitter and a subscriber, "
            f"{statistics.median(without_events):.2f} s without; target <= 3%)"
        )


if __name__ == "__main__":
    main()
