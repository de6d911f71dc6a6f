"""Many sessions and long sessions on this machine.

1. Batch throughput: the same recordings (parts of the demo) as a batch with 1 and with 2
   workers: recordings per hour, audio hours per hour, peak RSS per worker.
2. Long sessions: 1-hour and 4-hour recordings (the demo concatenated, built on the fly),
   each run in a process of its own: peak RSS (target under 3 GB), real-time factor per
   hour of audio (flat within 20%), and the time to open the finished session and build
   what the review paints first (target under 1 s). The sessions and their run figures
   are kept in ``benchmarks/.cache/``; ``--reuse-long`` opens them again without a new run.

    python benchmarks/bench_batch.py [--recordings 4] [--seconds 60] [--long-hours 1 4] [--skip-batch] [--reuse-long]
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import wave
from pathlib import Path

import numpy as np
from demo_audio import CACHE, repeated_demo  # benchmarks/demo_audio.py
from distributed import Client, LocalCluster

import livereview
from livereview.demo import demo_audio_path
from livereview.stages.audio import SAMPLE_RATE, iter_audio, probe

_LONG_RUN = """
import json, resource, sys, time
import livereview
started = time.perf_counter()
session = livereview.run(sys.argv[1], out_dir=sys.argv[2], num_speakers=4, language="en", progress=False)
wall = time.perf_counter() - started
metrics = json.loads(session.paths.metrics.read_text())
log = session.event_log()
done = [(e.position, e.timestamp) for e in log if e.kind == "chunk_completed"]
hourly, previous = [], (0.0, log[0].timestamp)
for hour in range(1, int(done[-1][0] // 3600) + 2):
    within = [d for d in done if d[0] <= hour * 3600 and d[0] > previous[0]]
    if within:
        hourly.append((within[-1][1] - previous[1]) / (within[-1][0] - previous[0]))
        previous = within[-1]
session.close()
print(json.dumps({"wall": wall, "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "factors": metrics["real_time_factors"], "stage_seconds": metrics["stage_seconds"],
                  "audio_seconds": metrics["audio_seconds"], "segments": metrics["segments"], "hourly": hourly,
                  "session": str(session.directory)}))
"""

_OPEN_AND_PAINT = """
import json, sys, time
started = time.perf_counter()
import livereview
from livereview.ui.review import ReviewWidget
imported = time.perf_counter()
session = livereview.open_session(sys.argv[1])
view = session.view()
opened = time.perf_counter()
review = ReviewWidget(session, user="bench", role="viewer")
review.grid.send = lambda content, buffers=None: None
review.flush(timeout=60)
review._send_snapshot("bench")
painted = time.perf_counter()
print(json.dumps({"import": imported - started, "open_and_view": opened - imported, "first_snapshot": painted - opened,
                  "rows": len(view)}))
review.close()
"""


def write_wav(path: Path, samples: np.ndarray) -> Path:
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(SAMPLE_RATE)
        out.writeframes((np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes())
    return path


def bench_batch(folder: Path, recordings: int, seconds: float) -> None:
    demo = np.concatenate(list(iter_audio(demo_audio_path())))
    inputs = folder / "inputs"
    inputs.mkdir()
    step = max(int((demo.size - seconds * SAMPLE_RATE) / max(recordings - 1, 1)), 0)
    for index in range(recordings):
        write_wav(inputs / f"part-{index}.wav", demo[index * step : index * step + int(seconds * SAMPLE_RATE)])
    audio_hours = recordings * seconds / 3600
    for workers in (1, 2):
        threads = str(max(1, 2 // workers))
        cluster = LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address=":0",
            env={"LIVEREVIEW_THREADS": threads, "OMP_NUM_THREADS": threads},
        )
        with cluster, Client(cluster) as client:
            started = time.perf_counter()
            rows = livereview.batch(inputs, folder / f"out-{workers}", client, num_speakers=4, progress=False)
            hours = (time.perf_counter() - started) / 3600
            peaks = client.run(lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
        done = int((rows["status"] == "complete").sum())
        print(
            f"batch, {workers} worker(s): {done}/{recordings} recordings of {seconds:g} s in {hours * 3600:.0f} s: "
            f"{recordings / hours:.0f} recordings/hour, {audio_hours / hours:.1f} audio hours/hour; "
            f"peak RSS per worker {', '.join(f'{mb:.0f} MB' for mb in peaks.values())} (models loaded once per worker)"
        )


def long_session(hours: float, *, reuse: bool) -> dict:
    """A session of the demo repeated for ``hours``, run in a process of its own into ``benchmarks/.cache/``.

    Returns the run's figures (kept beside it: ``reuse`` takes them instead of running again):
    wall seconds, peak RSS, real-time factors, stage seconds, the session's directory.
    """
    name = f"long-{round(hours * 60)}min"
    figures = CACHE / f"{name}.json"
    if not (reuse and figures.is_file()):
        repeats = int(np.ceil(hours * 3600 / probe(demo_audio_path()).duration))
        recording = repeated_demo(repeats, seconds=hours * 3600, path=CACHE / f"{name}.flac")
        shutil.rmtree(CACHE / "long" / name, ignore_errors=True)
        run = subprocess.run(
            [sys.executable, "-c", _LONG_RUN, str(recording), str(CACHE / "long" / name)],
            capture_output=True,
            text=True,
            check=True,
        )
        figures.write_text(run.stdout.strip().splitlines()[-1])
    return json.loads(figures.read_text())


def bench_long(hours: float, *, reuse: bool) -> None:
    """Run a long session (or reuse it), then open it and paint the review."""
    result = long_session(hours, reuse=reuse)
    paint = subprocess.run(
        [sys.executable, "-c", _OPEN_AND_PAINT, result["session"]],
        capture_output=True,
        text=True,
        check=True,
    )
    opened = json.loads(paint.stdout.strip().splitlines()[-1])
    factors = result["factors"]
    print(
        f"long session {hours:g} h ({result['segments']} segments): peak RSS {result['rss_mb']:.0f} MB "
        f"(target < 3000), real-time factor {factors['total']:.3f} (transcribe {factors.get('transcribe', 0):.3f}, "
        f"diarize {factors.get('diarize', 0):.3f}, global {factors.get('global', 0):.3f}), "
        f"wall {result['wall'] / 60:.1f} min; real-time factor per audio hour (wall clock) "
        f"{', '.join(f'{factor:.3f}' for factor in result['hourly'])} "
        f"(spread {100 * (max(result['hourly']) / min(result['hourly']) - 1):.0f}%, target within 20%); "
        f"open + merged view {opened['open_and_view']:.2f} s, review snapshot {opened['first_snapshot']:.2f} s "
        f"(target < 1 s together)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recordings", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--long-hours", type=float, nargs="*", default=[1.0, 4.0])
    parser.add_argument("--skip-batch", action="store_true")
    parser.add_argument(
        "--reuse-long",
        action="store_true",
        help="open the long sessions an earlier run kept in benchmarks/.cache/ (and print its figures) instead of "
        "running them again",
    )
    args = parser.parse_args()
    if not args.skip_batch:
        with tempfile.TemporaryDirectory(prefix="livereview-batch-") as tmp:
            bench_batch(Path(tmp), args.recordings, args.seconds)
    for hours in args.long_hours:
        bench_long(hours, reuse=args.reuse_long)


if __name__ == "__main__":
    main()
