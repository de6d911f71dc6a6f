"""Benchmark the downstream artifacts on a 35-minute session: snippets, scenes, knowledge.

Run with ``flock /tmp/livereview-cpu.lock python benchmarks/bench_downstream.py``. The session is the demo
recording concatenated twelve times (about 35 minutes), built and processed once by the
whole pipeline into ``benchmarks/.cache/demo-x12/`` and reused afterwards (delete that
folder to rebuild it). Prints:

* snippet export: clips per second and audio-seconds per second, one clip per segment
  (FLAC, every segment) and one per speaker (Ogg Opus);
* scenes and the knowledge base (offline backend), each from scratch, in seconds per
  audio hour: in a fresh process (models loaded, no text embedded yet), and in the process
  that has just processed or classified the session (its texts already embedded);

beside the pipeline's own time per audio hour on the same session (``metrics.json``):
the target is that each is well under it. The demo's lines repeat twelve times, and both the
sentence encoder and the knowledge stage reuse what they computed for a text they have seen,
which flatters those figures; so scenes and knowledge are also timed on 1,500 distinct
real lines (the first turns of CRD3 episode C2E001 in ``shared/data``, unlabelled, longer than
speech segments), scaled to an audio hour by the session's segments per hour.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

from demo_audio import CACHE, repeated_demo  # benchmarks/demo_audio.py

import livereview
from livereview.demo import demo_party_path

REPEATS = 12
DISTINCT_LINES = 1500
SESSION_ID = "demo-x12"


def processed_session() -> livereview.Session:
    """The 35-minute session, processed by the pipeline once and then reused."""
    directory = CACHE / SESSION_ID
    if (directory / "metadata.json").exists():
        session = livereview.open_session(directory)
        if session.status == "complete":
            return session
        session.close()
    audio = repeated_demo(REPEATS)
    print(f"processing {audio.name} once (cached in {directory}) ...", flush=True)
    return livereview.run(
        audio,
        out_dir=CACHE,
        session_id=SESSION_ID,
        num_speakers=4,
        party=demo_party_path(),
        language="en",
        progress=True,
    )


def timed(action):
    started = time.perf_counter()
    value = action()
    return time.perf_counter() - started, value


def main() -> None:
    session = processed_session()
    duration = float(session.metadata["audio"]["duration"])
    hours = duration / 3600
    total = _pipeline_seconds(session)
    print(
        f"session: {duration / 60:.1f} min of audio, {len(session.view())} segments; "
        f"pipeline {total:.0f} s ({total / hours:.0f} s per audio hour)"
    )
    out = CACHE / "bench-snippets"
    for by, fmt in (("segment", "flac"), ("speaker", "ogg")):
        shutil.rmtree(out, ignore_errors=True)
        seconds, result = timed(
            lambda by=by, fmt=fmt: session.export_snippets(by=by, format=fmt, out=out, progress=False)
        )
        audio = float(result.manifest["duration"].sum())
        print(
            f"snippets by {by} ({fmt}): {len(result.manifest)} clips in {seconds:.1f} s = "
            f"{len(result.manifest) / seconds:.1f} clips/s, {audio / seconds:.0f} audio-s/s"
        )
        again, repeat = timed(
            lambda by=by, fmt=fmt: session.export_snippets(by=by, format=fmt, out=out, progress=False)
        )
        print(f"  export again, nothing changed: {again:.2f} s ({len(repeat.written)} clips written)")
    session.close()
    subprocess.run([sys.executable, __file__, "--cold", str(total)], check=True)
    subprocess.run(
        [sys.executable, __file__, "--distinct", str(total / hours), str(len(session.view()) / hours)], check=True
    )
    session = livereview.open_session(CACHE / SESSION_ID)
    session.scenes(rebuild=True), session.knowledge(rebuild=True)  # embed the texts, as a run does
    time_story(session, total, "texts already embedded, as right after a run")
    correction = session.view().index[len(session.view()) // 2]
    session.set_override(correction, user="bench", text="Lord Briarwood rides to Whitestone.")
    seconds, _ = timed(lambda: session.knowledge())
    print(f"knowledge after one correction (parses only that line): {seconds:.1f} s")
    session.undo_last_batch("bench")
    session.close()


def time_story(session: livereview.Session, total: float, how: str) -> None:
    """Print the time of scenes and knowledge built from scratch, per audio hour and against the pipeline."""
    hours = float(session.metadata["audio"]["duration"]) / 3600
    for kept in ("scenes", "knowledge"):
        shutil.rmtree(session.directory / kept, ignore_errors=True)
    seconds, scenes = timed(lambda: session.scenes(rebuild=True))
    print(
        f"scenes ({how}): {len(scenes)} in {seconds:.1f} s = {seconds / hours:.0f} s per audio hour "
        f"({seconds / total:.1%} of the pipeline's time)"
    )
    seconds, knowledge = timed(lambda: session.knowledge(rebuild=True))
    print(
        f"knowledge ({how}): {len(knowledge.entities)} entities, {len(knowledge.mentions)} mentions in "
        f"{seconds:.1f} s = {seconds / hours:.0f} s per audio hour ({seconds / total:.1%} of the pipeline's time)"
    )


def distinct_lines(pipeline_per_hour: float, segments_per_hour: float) -> None:
    """Scenes and knowledge on :data:`DISTINCT_LINES` distinct transcript lines (CRD3), in a fresh process."""
    import gzip
    import json
    import os
    import tempfile

    from livereview.cli.downstream import transcript_lines
    from livereview.core.party import Party
    from livereview.stages.knowledge import build_knowledge
    from livereview.stages.scenes import find_scenes

    shared = Path(os.environ.get("LIVEREVIEW_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
    turns = shared / "crd3-dev" / "crd3_dev_turns.jsonl.gz"
    if not turns.is_file():
        print(f"distinct lines: {turns} not found (set LIVEREVIEW_SHARED_DATA); skipped")
        return
    with gzip.open(turns, "rt", encoding="utf-8") as stream:
        rows = [json.loads(line) for line in stream]
    lines = [r for r in rows if r["episode"] == "C2E001"][:DISTINCT_LINES]
    party = Party.from_dict({"game_master": "Matt", "characters": []})
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "lines.jsonl"
        path.write_text(
            "".join(
                json.dumps(
                    {"speaker": r["speakers"][0].title(), "text": r["text"], "start": i * 2.5, "end": i * 2.5 + 2.0}
                )
                + "\n"
                for i, r in enumerate(lines)
            ),
            encoding="utf-8",
        )
        frame = transcript_lines(path, party)  # unlabelled: the classifier would embed the texts first
    for name, build in (
        ("scenes", lambda: find_scenes(frame, game_master=["Matt"])),
        ("knowledge", lambda: build_knowledge(frame, party=party)),
    ):
        seconds, _ = timed(build)
        hourly = seconds * segments_per_hour / len(frame)
        print(
            f"{name} ({len(frame)} distinct lines, fresh process): {seconds:.1f} s = {hourly:.0f} s per audio hour "
            f"({hourly / pipeline_per_hour:.1%} of the pipeline's time)"
        )


def cold(total: float) -> None:
    """Scenes and knowledge in a fresh process: the sentence encoder and spaCy loaded first, no text embedded."""
    from livereview.stages.classify.features import load_encoder
    from livereview.stages.knowledge import load_nlp

    load_encoder(), load_nlp()
    session = livereview.open_session(CACHE / SESSION_ID)
    time_story(session, total, "fresh process, models loaded")
    session.close()


def _pipeline_seconds(session: livereview.Session) -> float:
    """The pipeline's time on the session: its stage seconds (transcribe, diarize, classify, global pass)."""
    return float(sum(session.metrics()["stage_seconds"].values()))


if __name__ == "__main__":
    if sys.argv[1:2] == ["--cold"]:
        cold(float(sys.argv[2]))
    elif sys.argv[1:2] == ["--distinct"]:
        distinct_lines(float(sys.argv[2]), float(sys.argv[3]))
    else:
        main()
