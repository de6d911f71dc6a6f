"""Benchmark partial reruns.

Run with ``python benchmarks/bench_reruns.py``. Prints, beside their targets:

* reclassification of 500 segments with the default classifier (target under 2 s):
  cold (the encoder has never seen the texts; median of 3), warm (texts already
  embedded, as right after a run or in a second experiment), and with 25 operator
  corrections to learn from first (refit included). The 500 segments are the first
  500 distinct lines of the shipped tabletop corpus, so every text is new to a cold
  encoder (a recording made of repeated audio would repeat texts and flatter it);
* re-diarization of a 5-minute range of a real run (the demo recording twice over,
  5.8 minutes) as a real-time factor, with and without a speaker count.

Classifier and diarization models are loaded before the clock starts, as in a notebook
where the session's models are already in memory.
"""

from __future__ import annotations

import statistics
import tempfile
import time
import wave
from pathlib import Path

import numpy as np

import livereview
from livereview.core.segments import CLASSIFIED, Segment, segment_id_for
from livereview.demo import demo_audio_path, demo_party_path
from livereview.review.run import SessionSink
from livereview.stages.audio import SAMPLE_RATE, iter_audio
from livereview.stages.classify import default_classifier
from livereview.stages.classify.training import load_training_data
from livereview.stages.diarize import Diarizer

SEGMENTS = 500
PER_CHUNK = 20
CORRECTIONS = 25
RECLASSIFY_TARGET_S = 2.0
RANGE_S = 300.0


def corpus_session(out_dir: Path) -> livereview.Session:
    """A complete session of :data:`SEGMENTS` distinct corpus lines, 3 s apart."""
    lines = load_training_data().drop_duplicates("text").head(SEGMENTS).reset_index(drop=True)
    session = livereview.Session.create(demo_audio_path(), out_dir=out_dir, session_id="corpus")
    segments = [
        Segment(
            session_id=session.session_id,
            segment_id=segment_id_for(index // PER_CHUNK, index % PER_CHUNK),
            chunk_id=index // PER_CHUNK,
            start=index * 3.0,
            end=index * 3.0 + 2.5,
            text=row.text,
            speaker_id=row.speaker,
            ic_ooc="OOC",
            ic_ooc_confidence=0.5,
            status=CLASSIFIED,
        )
        for index, row in enumerate(lines.itertuples())
    ]
    sink = SessionSink(session)
    for chunk in range(len(segments) // PER_CHUNK):
        record = {"chunk_id": chunk, "start": chunk * PER_CHUNK * 3.0, "end": (chunk + 1) * PER_CHUNK * 3.0}
        sink.commit_chunk(record, [s for s in segments if s.chunk_id == chunk])
    sink.set_status("complete")
    return session


def timed(action) -> tuple[float, object]:
    started = time.perf_counter()
    value = action()
    return time.perf_counter() - started, value


def bench_reclassify(out_dir: Path) -> None:
    classifier = default_classifier()
    session = corpus_session(out_dir)
    chunks = sorted(session.completed_chunks)
    cold = []
    for _ in range(3):
        classifier.encoder._cache.clear()
        seconds, rerun = timed(lambda: session.reclassify(chunks=chunks, user="bench", progress=False))
        cold.append(seconds)
    warm, _ = timed(lambda: session.reclassify(chunks=chunks, user="bench", progress=False))
    ids = rerun.segment_ids[:CORRECTIONS]
    for sid in ids:
        session.set_override(sid, user="bench", ic_ooc="IC", character_tag="DM")
    classifier.encoder._cache.clear()
    taught, taught_rerun = timed(lambda: session.reclassify(chunks=chunks, user="bench", progress=False))
    median = statistics.median(cold)
    verdict = "meets" if median < RECLASSIFY_TARGET_S else "MISSES"
    print(f"reclassify {len(rerun.segment_ids)} segments, default classifier ({classifier.name}):")
    print(
        f"  cold  {median:.2f} s median of 3 ({', '.join(f'{s:.2f}' for s in cold)}), "
        f"{len(rerun.segment_ids) / median:.0f} segments/s; target {RECLASSIFY_TARGET_S:.1f} s: {verdict}"
    )
    print(f"  warm  {warm:.2f} s (texts already embedded)")
    print(f"  with {CORRECTIONS} corrections to learn from, cold: {taught:.2f} s ({taught_rerun.record['model']})")
    session.close()


def doubled_demo(path: Path) -> float:
    """The demo recording twice over as 16 kHz WAV; its duration in seconds."""
    audio = np.concatenate(list(iter_audio(demo_audio_path())))
    samples = np.concatenate([audio, audio])
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(SAMPLE_RATE)
        out.writeframes((np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes())
    return len(samples) / SAMPLE_RATE


def bench_rediarize(out_dir: Path) -> None:
    audio = out_dir / "demo_twice.wav"
    duration = doubled_demo(audio)
    print(f"running the pipeline on the demo twice over ({duration / 60:.1f} min) for re-diarization…")
    session = livereview.run(audio, out_dir=out_dir, num_speakers=4, party=demo_party_path(), language="en")
    Diarizer(session.options.diarize)  # models in memory, as after the run
    for speakers in (None, 4):
        seconds, rerun = timed(
            lambda n=speakers: session.rediarize(time=(0.0, RANGE_S), num_speakers=n, user="bench", progress=False)
        )
        print(
            f"re-diarize {RANGE_S / 60:.0f} min ({len(rerun.segment_ids)} segments, num_speakers={speakers}): "
            f"{seconds:.1f} s, real-time factor {seconds / RANGE_S:.3f}; {len(rerun.changed_ids)} segments changed"
        )
    session.close()


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="livereview-bench-reruns-") as tmp:
        bench_reclassify(Path(tmp))
        bench_rediarize(Path(tmp))


if __name__ == "__main__":
    main()
