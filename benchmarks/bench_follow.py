"""Following a recording that is being written: how long after its audio is written does a row appear?

A writer thread writes the demo recording (WAV, 16 kHz) at real-time speed, as a
recorder would (placeholder header first), while ``livereview.run(..., follow=True)``
follows it. For every transcribed segment, the delay is the time its ``segments`` event
was written to ``events.jsonl`` minus the time the audio at the segment's end was
written. Prints the median and 95th percentile per chunk length (target: under 30 s at
the default chunk length; and the chunk length that gives under 10 s).

    python benchmarks/bench_follow.py [--chunk-lengths 20 6] [--speed 1.0]
"""

from __future__ import annotations

import argparse
import bisect
import io
import statistics
import tempfile
import threading
import time
import wave
from pathlib import Path

import numpy as np

import livereview
from livereview.demo import demo_audio_path
from livereview.stages.audio import SAMPLE_RATE, iter_audio

HEADER_BYTES = 44
BLOCK_SECONDS = 0.25


def write_growing(samples: np.ndarray, target: Path, speed: float, log: list[tuple[float, float]]) -> None:
    """Write a 16-bit WAV of ``samples`` at ``speed`` times real time; log (audio seconds written, time)."""
    pcm = (np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes()
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as header:
        header.setnchannels(1)
        header.setsampwidth(2)
        header.setframerate(SAMPLE_RATE)
    placeholder = bytearray(buffer.getvalue()[:HEADER_BYTES])
    placeholder[4:8] = placeholder[40:44] = b"\xff\xff\xff\xff"  # sizes unknown while recording
    block = int(BLOCK_SECONDS * SAMPLE_RATE) * 2
    started = time.time()
    with target.open("wb") as out:
        out.write(placeholder)
        for offset in range(0, len(pcm), block):
            out.write(pcm[offset : offset + block])
            out.flush()
            written = (offset + len(pcm[offset : offset + block])) / 2 / SAMPLE_RATE
            log.append((written, time.time()))
            time.sleep(max(started + written / speed - time.time(), 0.0))


def measure(chunk_length: float, speed: float, folder: Path) -> list[float]:
    samples = np.concatenate(list(iter_audio(demo_audio_path())))
    growing = folder / f"table-{chunk_length:g}.wav"
    log: list[tuple[float, float]] = []
    writer = threading.Thread(target=write_growing, args=(samples, growing, speed, log), daemon=True)
    writer.start()
    while not growing.exists() or growing.stat().st_size < HEADER_BYTES + 32_000:
        time.sleep(0.01)
    session = livereview.run(
        growing,
        out_dir=folder / "out",
        num_speakers=4,
        language="en",
        chunk_length=chunk_length,
        follow=True,
        idle_timeout=10.0,
        progress=False,
    )
    writer.join()
    written_seconds = [seconds for seconds, _ in log]
    delays = []
    for event in session.event_log():
        if event.kind != "segments":
            continue
        for segment in event.segments:
            index = min(bisect.bisect_left(written_seconds, segment.end), len(log) - 1)
            delays.append(event.timestamp - log[index][1])
    session.close()
    return delays


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunk-lengths", type=float, nargs="+", default=[20.0, 6.0])
    parser.add_argument("--speed", type=float, default=1.0, help="how much faster than real time the writer writes")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="livereview-follow-") as tmp:
        for length in args.chunk_lengths:
            delays = measure(length, args.speed, Path(tmp))
            p95 = float(np.percentile(delays, 95))
            print(
                f"chunk length {length:g} s: {len(delays)} segments, delay from audio written to its row "
                f"median {statistics.median(delays):.1f} s, 95th percentile {p95:.1f} s "
                f"(writer at {args.speed:g}x real time)"
            )


if __name__ == "__main__":
    main()
