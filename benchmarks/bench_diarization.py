"""Who spoke when, side by side: pyannote's own pipeline, livereview's turns, the RTTM export.

Run it alone on the machine::

    .venv/bin/python benchmarks/bench_diarization.py [--sets sample demo ami-dev]

For each recording set (the pyannote sample, the demo, the ten AMI excerpts of
``../shared/data/ami-dev/``), with the speaker count given and without it, prints the
DER (pyannote.metrics: no collar, overlap scored, the UEM where there is one) of

* pyannote's ``SpeakerDiarization`` on the whole file with the same two local models
  (segmentation-3.0 at a step of 0.1, CAM++, both in torch), the baseline to meet;
* livereview's speaker turns (``session.diarization()``) after a whole run;
* livereview's RTTM export (``session.export("rttm")``);
* the oracle-clustering floor: the run's own local speakers (per chunk, before linking)
  each given the reference speaker it overlaps most, so only the segmentation's errors
  are left;

the online DER of the turns (each with the speaker it had when its chunk completed, told
by the ``chunk_completed`` event, against the final turns), and of the segments (each segment
with the speaker it had when its chunk was diarized, against the same segments after the
global pass: one speaker per segment both ways), how many
segment labels the reclusterings during the run and the global pass changed more than 2
minutes after that speaker was first heard, the number of speakers found against the
truth, per file, and the word-level speaker
accuracy (``session.words()``: each word's speaker against the reference speaker at its
midpoint, best one-to-one mapping; a mean over the set's files weighted by words).

With ``--long``, also the demo repeated to 35 minutes and to one hour (4 speakers given),
each run in a process of its own (kept in ``benchmarks/.cache/``, ``--reuse-long`` takes
the kept runs): the run's peak RSS, the final pass's seconds per audio hour on both and
how much more the hour costs, and the final turns' DER against the demo's reference
repeated.
"""

from __future__ import annotations

import argparse
import tempfile
from collections import Counter

import numpy as np
import pandas as pd
import torch
from bench_batch import long_session  # benchmarks/bench_batch.py
from bench_pipeline import Recording, recordings  # benchmarks/bench_pipeline.py
from pyannote.core import Annotation
from pyannote.core import Segment as Span
from pyannote.database.util import load_rttm
from pyannote.metrics.diarization import DiarizationErrorRate

import livereview
from livereview.demo import demo_audio_path, demo_rttm_path
from livereview.review.attribution import word_speaker_accuracy
from livereview.review.run import run_session
from livereview.stages.audio import SAMPLE_RATE, iter_audio, probe
from livereview.stages.diarize.models import load_offline_pipeline
from livereview.stages.pipeline import Models

PLAIN_STEP = 0.1


def annotation(turns: list[tuple[float, float, str]], uri: str) -> Annotation:
    result = Annotation(uri=uri)
    for index, (start, end, speaker) in enumerate(turns):
        if end > start:
            result[Span(start, end), index] = speaker
    return result


def online_labels(events: list, view: pd.DataFrame, uri: str) -> dict[str, Annotation | int]:
    """Segments as labelled when their chunk was diarized and after the global pass; late relabels.

    Also the turns as labelled when their chunk completed (from its ``chunk_completed`` event).
    """
    online, current, first_heard, late, online_turns = {}, {}, {}, 0, []
    for event in events:
        if event.kind == "chunk_completed":
            online_turns += [tuple(turn) for turn in event.data["turns"]]
        if event.kind != "update":
            continue
        for row in event.segments:
            if not row.speaker_id:
                continue
            if event.stage == "diarize":
                online[row.segment_id] = (row.start, row.end, row.speaker_id)
                first_heard.setdefault(row.speaker_id, row.start)
            elif event.stage in ("recluster", "global") and current.get(row.segment_id) != row.speaker_id:
                heard = min(
                    first_heard.get(row.speaker_id, row.start), first_heard.get(current.get(row.segment_id), row.start)
                )
                late += row.start - heard > 120.0
            current[row.segment_id] = row.speaker_id
    final = [(r.start, r.end, r.speaker_id) for r in view.itertuples() if isinstance(r.speaker_id, str)]
    return {
        "online": annotation(list(online.values()), uri),
        "online turns": annotation(online_turns, uri),
        "segments": annotation(final, uri),
        "late_relabels": late,
        "labelled": len(online),
    }


def turn_table(reference: Annotation) -> pd.DataFrame:
    """An annotation's turns as ``start``, ``end``, ``speaker_id``."""
    tracks = [(turn.start, turn.end, label) for turn, _, label in reference.itertracks(yield_label=True)]
    return pd.DataFrame(tracks, columns=["start", "end", "speaker_id"])


def plain_pipeline(recording: Recording, num_speakers: int | None) -> Annotation:
    """pyannote's SpeakerDiarization on the whole file, the same local models run in torch as pyannote runs them.

    (Run in ONNX Runtime, whose scores differ by 1e-4, the pipeline finds 3 speakers
    for the sample's 2 without a count: its clustering sits on a knife edge there.)
    """
    pipeline = load_offline_pipeline(PLAIN_STEP, "cpu", "torch")
    audio = np.concatenate(list(iter_audio(recording.audio)))
    file = {"waveform": torch.from_numpy(audio)[None], "sample_rate": SAMPLE_RATE, "uri": recording.name}
    output = pipeline(file, num_speakers=num_speakers) if num_speakers else pipeline(file)
    return output.speaker_diarization


def oracle(session: livereview.Session, reference: Annotation) -> Annotation:
    """The run's local speakers (chunk, pipeline label), each named after the reference speaker it overlaps most."""
    result = Annotation(uri=reference.uri)
    for chunk in session.speaker_chunks():
        shared: dict[str, Counter[str]] = {}
        for start, end, label in chunk.turns:
            cropped = reference.crop(Span(start, end), mode="intersection")
            counts = shared.setdefault(label, Counter())
            for speaker in cropped.labels():
                counts[speaker] += cropped.label_duration(speaker)
        for index, (start, end, label) in enumerate(chunk.turns):
            best = shared[label].most_common(1)
            result[Span(start, end), (chunk.chunk_id, index)] = best[0][0] if best else f"{chunk.chunk_id}/{label}"
    return result


def livereview_run(
    recording: Recording, num_speakers: int | None, models: dict, recluster_after: int | None = 4, **diarize_options
) -> dict[str, Annotation | int]:
    """A whole run: its turns, its RTTM export, the oracle floor, the speakers found."""
    diarize = livereview.DiarizeOptions(num_speakers=num_speakers, recluster_after=recluster_after, **diarize_options)
    options = livereview.RunOptions(diarize=diarize)
    key = num_speakers  # the diarizer keeps the speaker count of its options
    if key not in models:
        models[key] = Models.load(options)
    with tempfile.TemporaryDirectory() as out:
        session = livereview.Session.create(recording.audio, out_dir=out, options=options)
        recorder = livereview.RecordingSubscriber()
        session.events.subscribe(recorder, name="recorder")
        run_session(session, progress=False, models=models[key])
        session.events.close()
        turns = session.diarization()
        words = session.words()
        exported = next(iter(load_rttm(str(session.export("rttm"))).values()), Annotation(uri=recording.name))
        result = {
            "turns": annotation(list(turns.itertuples(index=False, name=None)), recording.name),
            "export": exported,
            "oracle": oracle(session, recording.reference),
            "speakers": int(turns["speaker_id"].nunique()),
            "words": (word_speaker_accuracy(words, turn_table(recording.reference)), len(words)),
            **online_labels(recorder.events, session.view(), recording.name),
        }
        session.close()
    return result


def repeated_reference(seconds: float) -> Annotation:
    """The demo's reference turns repeated for ``seconds``, as :func:`repeated_demo` builds the audio."""
    demo, length = next(iter(load_rttm(str(demo_rttm_path())).values())), probe(demo_audio_path()).duration
    result = Annotation(uri="repeated demo")
    for copy in range(int(np.ceil(seconds / length))):
        for turn, track, label in demo.itertracks(yield_label=True):
            start, end = turn.start + copy * length, min(turn.end + copy * length, seconds)
            if end > start:
                result[Span(start, end), (copy, track)] = label
    return result


def bench_long(reuse: bool) -> None:
    """Final-pass cost per audio hour and peak RSS on 35 minutes and on one hour of the demo repeated."""
    figures = {}
    for minutes in (35, 60):
        run = long_session(minutes / 60, reuse=reuse)
        session = livereview.open_session(run["session"])
        turns = session.diarization()
        session.close()
        audio = run["audio_seconds"]
        der = DiarizationErrorRate(collar=0.0, skip_overlap=False)(
            repeated_reference(audio), annotation(list(turns.itertuples(index=False, name=None)), "long")
        )
        per_hour = run["stage_seconds"].get("global", 0.0) * 3600 / audio
        figures[minutes] = per_hour
        print(
            f"demo repeated to {minutes} min ({len(turns)} turns): peak RSS {run['rss_mb']:.0f} MB (target < 3000), "
            f"final pass {run['stage_seconds'].get('global', 0.0):.2f} s = {per_hour:.2f} s per audio hour, "
            f"reclusters during the run {run['stage_seconds'].get('recluster', 0.0):.2f} s, turns DER {der:.3f}"
        )
    more = 100 * (figures[60] / figures[35] - 1)
    print(f"final pass per audio hour, 1 h against 35 min: {more:+.0f}% (target <= +20%)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", nargs="*", default=["sample", "demo", "ami-dev"])
    parser.add_argument(
        "--recluster-after", type=int, default=4, help="chunks before the first recluster during the run (0: none)"
    )
    parser.add_argument(
        "--embedding-stride",
        type=int,
        default=livereview.DiarizeOptions.embedding_stride,
        help="embed every n-th segmentation window of livereview's runs (1: every window)",
    )
    parser.add_argument("--long", action="store_true", help="also the 35-minute and 1-hour sessions")
    parser.add_argument("--reuse-long", action="store_true", help="take the long runs kept by an earlier --long")
    args = parser.parse_args()
    sets = {name: found for name, found in recordings(quick=True).items() if name in args.sets}
    truth = {"sample": 2, "demo": 4}
    models: dict = {}
    for name, set_recordings in sets.items():
        for given in (True, False):
            metrics = {kind: DiarizationErrorRate(collar=0.0, skip_overlap=False) for kind in _KINDS}
            counts, word_scores = [], []
            late = labelled = 0
            for recording in set_recordings:
                true_count = truth.get(name) or len(recording.reference.labels())
                count = true_count if given else None
                run = livereview_run(
                    recording, count, models, args.recluster_after or None, embedding_stride=args.embedding_stride
                )
                hypotheses = {"plain": plain_pipeline(recording, count), **run}
                late += run["late_relabels"]
                labelled += run["labelled"]
                for kind, metric in metrics.items():
                    metric(recording.reference, hypotheses[kind], uem=recording.uem)
                plain_count = len(hypotheses["plain"].labels())
                counts.append((recording.name, true_count, run["speakers"], plain_count))
                if run["words"][1] and np.isfinite(run["words"][0]):
                    word_scores.append(run["words"])
            within = sum(abs(found - true) <= 1 for _, true, found, _ in counts)
            figures = ", ".join(f"{_KINDS[kind]} {abs(metric):.3f}" for kind, metric in metrics.items())
            accuracy = sum(a * n for a, n in word_scores) / max(sum(n for _, n in word_scores), 1)
            print(f"{name}, speaker count {'given' if given else 'not given'}: DER {figures}")
            print(f"  word-level speaker accuracy {accuracy:.3f} ({sum(n for _, n in word_scores)} words)")
            print(f"  segment labels changed more than 2 min after the speaker was first heard: {late} of {labelled}")
            if not given:
                found = " ".join(f"{file} {true}/{mine}/{plain}" for file, true, mine, plain in counts)
                print(
                    f"  speakers (true/livereview/pyannote): {found}; livereview within one of the truth "
                    f"on {within} of {len(counts)}"
                )
    if args.long or args.reuse_long:
        bench_long(args.reuse_long)


_KINDS = {
    "plain": "pyannote plain",
    "turns": "livereview turns",
    "export": "RTTM export",
    "oracle": "oracle-clustering floor",
    "online turns": "online turns (as labelled when their chunk completed)",
    "online": "online (segments at diarization time)",
    "segments": "segments after the global pass",
}


if __name__ == "__main__":
    main()
