"""The options of a run on the command line, shared by ``livereview run`` and ``livereview batch``."""

from __future__ import annotations

import argparse
from pathlib import Path

from livereview.review.checks import AUTO_SPEAKERS, InputError


def speaker_count(value: str) -> int | str:
    """``--num-speakers``: a whole number, or ``auto``."""
    if value == AUTO_SPEAKERS:
        return value
    try:
        return int(value)
    except ValueError:
        msg = f"expected a whole number or {AUTO_SPEAKERS!r}, got {value!r}"
        raise argparse.ArgumentTypeError(msg) from None


def add_run_options(parser: argparse.ArgumentParser) -> None:
    """The options of a run, shared by ``run`` and ``batch``."""
    parser.add_argument("--out", type=Path, default=Path("output"), help="output directory (default: output)")
    parser.add_argument(
        "--num-speakers",
        type=speaker_count,
        help="exact number of speakers, or 'auto' (with --party and no count, the table bounds it)",
    )
    parser.add_argument("--min-speakers", type=int, help="at least this many speakers")
    parser.add_argument("--max-speakers", type=int, help="at most this many speakers")
    parser.add_argument("--whisper-model", default="tiny.en", help="faster-whisper model name or directory")
    parser.add_argument("--language", help="spoken language code, e.g. en (default: detect)")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--diarization-pipeline", default="offline", help="'offline' or a pyannote pipeline name")
    parser.add_argument("--chunk-length", type=float, help="preferred chunk length in seconds (default 20)")
    parser.add_argument("--classifier", help="IC/OOC classifier name (default: the offline classifier)")
    parser.add_argument("--party", type=Path, help="party file (YAML)")
    parser.add_argument(
        "--threads",
        type=int,
        help="threads the models may use in all (default: the cores this process may use, or LIVEREVIEW_THREADS)",
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar")


def run_options(args: argparse.Namespace) -> dict[str, object]:
    """The keyword arguments of :func:`livereview.run` the shared options give."""
    refused = [
        message
        for wrong, message in (
            (
                args.chunk_length is not None and args.chunk_length <= 0,
                f"--chunk-length must be positive; got {args.chunk_length}",
            ),
            (args.party is not None and not args.party.is_file(), f"party file not found: {args.party}"),
            (args.threads is not None and args.threads < 1, f"--threads must be at least 1; got {args.threads}"),
        )
        if wrong
    ]
    if refused:  # the arguments themselves; everything else is checked before any work
        raise InputError(refused)
    return {
        "num_speakers": args.num_speakers,
        "min_speakers": args.min_speakers,
        "max_speakers": args.max_speakers,
        "whisper_model": args.whisper_model,
        "language": args.language,
        "device": args.device,
        "diarization_pipeline": args.diarization_pipeline,
        "chunk_length": args.chunk_length,
        "classifier": args.classifier,
        "party": args.party,
        "threads": args.threads,
    }
