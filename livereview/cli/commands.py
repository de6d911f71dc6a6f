"""Command line: ``livereview run|export|override|undo|serve|classify|rerun|snippets|knowledge``.

Each subcommand is registered by an ``add_*_command(subparsers)`` function that
sets ``handler``; errors users can fix print one line and exit with status 2.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from livereview.cli.batch import add_batch_command
from livereview.cli.classify import add_classify_command
from livereview.cli.downstream import add_knowledge_command, add_snippets_command
from livereview.cli.options import add_run_options, run_options
from livereview.cli.rerun import add_rerun_command
from livereview.review.checks import InputError
from livereview.review.session import Session, run
from livereview.stages.audio import AudioError
from livereview.stages.chat import LLMUnavailableError
from livereview.store.rerun_log import RerunError
from livereview.store.writer import SessionBusyError


def add_run_command(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("run", help="transcribe, diarize and classify a recording")
    parser.add_argument("audio", type=Path, help="recording (anything FFmpeg decodes)")
    parser.add_argument("--session-id", help="session directory name (default: from the file name)")
    add_run_options(parser)
    parser.add_argument(
        "--follow", action="store_true", help="the recording is still being written: process it as it grows"
    )
    parser.add_argument(
        "--idle-timeout",
        type=float,
        default=30.0,
        metavar="S",
        help="with --follow: seconds without growth that end the recording (default 30)",
    )
    parser.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    if args.idle_timeout <= 0:
        raise InputError([f"--idle-timeout must be positive seconds; got {args.idle_timeout}"])
    session = run(
        args.audio,
        session_id=args.session_id,
        out_dir=args.out,
        follow=args.follow,
        idle_timeout=args.idle_timeout,
        progress=not args.quiet,
        **run_options(args),
    )
    session.close()
    segments = session.segments
    print(f"{len(segments)} segments from {session.audio_path.name}; results in {session.directory}/")
    print(f"  segments: {session.paths.segments}")
    print(f"  events:   {session.paths.events}")
    print(f"  metrics:  {session.paths.metrics}")
    for condition in session.health():
        if condition["key"] == "recording":
            print(f"warning: {condition['message']}", file=sys.stderr)
    return 0


def add_export_command(subparsers: argparse._SubParsersAction) -> None:
    from livereview.review.exports import EXPORTERS, SELECTIONS

    parser = subparsers.add_parser("export", help="write the corrected results in a file format")
    parser.add_argument("session_dir", type=Path, help="a session directory (output/<session_id>)")
    parser.add_argument("--format", required=True, choices=sorted(EXPORTERS), dest="fmt")
    parser.add_argument("--select", default="all", choices=sorted(SELECTIONS), help="all, ic or ooc segments")
    parser.add_argument(
        "-o",
        "--output",
        type=Path,
        help="file to write; - for standard output (default: the exports/ folder)",
    )
    parser.set_defaults(handler=_export)


def _export(args: argparse.Namespace) -> int:
    session = _open(args.session_dir)
    if args.output == Path("-"):
        print(session.export_text(args.fmt, selection=args.select), end="")
    else:
        print(session.export(args.fmt, args.output, selection=args.select))
    session.close()
    return 0


def add_override_command(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("override", help="correct fields of one segment")
    parser.add_argument("session_dir", type=Path)
    parser.add_argument("segment_id")
    parser.add_argument("--user", required=True, help="who makes the correction")
    parser.add_argument("--reason", help="why (kept in the audit trail)")
    parser.add_argument("--role", default="editor", choices=["viewer", "editor", "admin"])
    parser.add_argument("--speaker-id")
    parser.add_argument("--character-tag")
    parser.add_argument("--ic-ooc", choices=["IC", "OOC", "MIXED"])
    parser.add_argument("--text")
    parser.add_argument("--uncertain", dest="confidence_flag", action=argparse.BooleanOptionalAction, default=None)
    parser.add_argument("--new-speaker", action="store_true", help="allow a speaker not seen before")
    parser.set_defaults(handler=_override)


def _override(args: argparse.Namespace) -> int:
    names = ("speaker_id", "character_tag", "ic_ooc", "text", "confidence_flag")
    fields = {name: getattr(args, name) for name in names if getattr(args, name) is not None}
    if not fields:
        msg = "nothing to correct: give at least one of --speaker-id, --character-tag, --ic-ooc, --text, --uncertain"
        raise ValueError(msg)
    session = _open(args.session_dir)
    records = session.set_override(
        args.segment_id,
        user=args.user,
        reason=args.reason,
        role=args.role,
        allow_new_speaker=args.new_speaker,
        **fields,
    )
    for record in records:
        print(f"{record.segment_id} {record.field}: {record.previous_value!r} -> {record.value!r} (seq {record.seq})")
    session.close()
    return 0


def add_undo_command(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("undo", help="revert a user's last applied batch of corrections")
    parser.add_argument("session_dir", type=Path)
    parser.add_argument("--user", required=True)
    parser.add_argument("--role", default="editor", choices=["viewer", "editor", "admin"])
    parser.set_defaults(handler=_undo)


def _undo(args: argparse.Namespace) -> int:
    session = _open(args.session_dir)
    batch = session.undo_last_batch(args.user, role=args.role)
    print(f"reverted batch {batch}" if batch else f"nothing to undo for {args.user}")
    session.close()
    return 0


def _open(directory: Path) -> Session:
    return Session.open(directory)


def add_serve_command(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("serve", help="stream a session's live events over WebSocket and SSE")
    parser.add_argument("session_dir", type=Path)
    parser.add_argument("--host", default="127.0.0.1", help="address (default 127.0.0.1; others need tokens)")
    parser.add_argument("--port", type=int, default=8765, help="port (default 8765; 0 picks a free one)")
    parser.add_argument("--token-file", type=Path, help="one 'TOKEN USER ROLE' line per user (viewer or editor)")
    parser.add_argument("--run", action="store_true", help="also process the recording (resuming) while serving")
    parser.set_defaults(handler=_serve)


def _serve(args: argparse.Namespace) -> int:
    import time

    from livereview.server.access import access_table
    from livereview.server.handle import serve

    if not 0 <= args.port <= 65535:
        msg = f"--port must be between 0 and 65535; got {args.port}"
        raise ValueError(msg)
    tokens = access_table(args.host, args.token_file)  # checked before the session is opened
    session = _open(args.session_dir)
    try:
        handle = serve(session, host=args.host, port=args.port, tokens=tokens)
    except OSError as error:
        session.close()
        if isinstance(error, FileNotFoundError):
            raise
        print(f"livereview serve: error: {error.strerror or error}", file=sys.stderr)
        return 2
    print(f"serving {session.session_id} on {handle.url} (WebSocket {handle.ws_url}); Ctrl-C stops", flush=True)
    if args.run:
        session.start(progress=False)
    try:
        while handle.running:
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        handle.stop()
        session.close()
    return 0 if handle.error is None else 1


COMMANDS = (
    add_run_command,
    add_export_command,
    add_override_command,
    add_undo_command,
    add_serve_command,
    add_classify_command,
    add_rerun_command,
    add_snippets_command,
    add_knowledge_command,
    add_batch_command,
)


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
    except InputError as error:
        for problem in error.problems:
            print(f"livereview {args.command}: error: {problem}", file=sys.stderr)
        return 2
    except (
        FileNotFoundError,
        IsADirectoryError,
        FileExistsError,
        AudioError,
        ValueError,
        PermissionError,
        RerunError,
        SessionBusyError,
        LLMUnavailableError,
    ) as error:
        for line in str(error).splitlines():
            print(f"livereview {args.command}: error: {line}", file=sys.stderr)
        return 2
