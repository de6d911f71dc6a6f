"""Command line: ``livereview run|export|classify|...``.

Each subcommand is registered by an ``add_*_command(subparsers)`` function that
sets ``handler``; errors users can fix print one line and exit with status 2.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from livereview.audio import AudioError


def add_run_command(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("run", help="transcribe, diarize and classify a recording")
    parser.add_argument("audio", type=Path, help="recording (anything FFmpeg decodes)")
    parser.add_argument("--session-id", help="session directory name (default: from the file name)")
    parser.add_argument("--out", type=Path, default=Path("output"), help="output directory (default: output)")
    parser.add_argument("--num-speakers", type=int, help="exact number of speakers")
    parser.add_argument("--min-speakers", type=int, help="at least this many speakers")
    parser.add_argument("--max-speakers", type=int, help="at most this many speakers")
    parser.add_argument("--whisper-model", default="tiny.en", help="faster-whisper model name or directory")
    parser.add_argument("--language", help="spoken language code, e.g. en (default: detect)")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--diarization-pipeline", default="offline", help="'offline' or a pyannote pipeline name")
    parser.add_argument("--chunk-length", type=float, help="preferred chunk length in seconds (default 20)")
    parser.add_argument("--classifier", help="IC/OOC classifier name (default: the offline classifier)")
    parser.add_argument("--party", type=Path, help="party file (YAML)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    import livereview

    if args.chunk_length is not None and args.chunk_length <= 0:
        msg = f"--chunk-length must be positive; got {args.chunk_length}"
        raise ValueError(msg)
    if args.party is not None and not args.party.is_file():
        msg = f"party file not found: {args.party}"
        raise FileNotFoundError(msg)
    session = livereview.run(
        args.audio,
        session_id=args.session_id,
        out_dir=args.out,
        num_speakers=args.num_speakers,
        min_speakers=args.min_speakers,
        max_speakers=args.max_speakers,
        whisper_model=args.whisper_model,
        language=args.language,
        device=args.device,
        diarization_pipeline=args.diarization_pipeline,
        chunk_length=args.chunk_length,
        classifier=args.classifier,
        party=args.party,
        progress=not args.quiet,
    )
    session.close()
    segments = session.segments
    print(f"{len(segments)} segments from {session.audio_path.name}; results in {session.directory}/")
    print(f"  segments: {session.store.segments_path}")
    print(f"  events:   {session.store.events_path}")
    print(f"  metrics:  {session.store.metrics_path}")
    return 0


COMMANDS = (add_run_command,)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="livereview", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="log more")
    subparsers = parser.add_subparsers(dest="command", required=True)
    for add_command in COMMANDS:
        add_command(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    try:
        return args.handler(args)
    except (FileNotFoundError, IsADirectoryError, FileExistsError, AudioError, ValueError, PermissionError) as error:
        print(f"livereview {args.command}: error: {error}", file=sys.stderr)
        return 2
