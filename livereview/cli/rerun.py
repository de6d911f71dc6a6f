"""``livereview rerun``: reclassify or re-diarize part of a session, or list its reruns.

Usage
-----
::

    livereview rerun output/game reclassify --segments c00002-s000:c00006-s003 --user ana
    livereview rerun output/game rediarize --time 60:120 --num-speakers 3 --user ana
    livereview rerun output/game history
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from livereview.review.session import Session
from livereview.store.rerun_log import RECLASSIFY, REDIARIZE

HISTORY = "history"


def add_rerun_command(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``rerun SESSION_DIR reclassify|rediarize|history [selection] [options]``."""
    parser = subparsers.add_parser(
        "rerun",
        help="reclassify or re-diarize part of a session, or list its reruns",
        description=__doc__.splitlines()[0],
    )
    parser.add_argument("session_dir", type=Path, help="a completed session directory (output/<session_id>)")
    parser.add_argument("kind", choices=[RECLASSIFY, REDIARIZE, HISTORY])
    chosen = parser.add_mutually_exclusive_group()
    chosen.add_argument("--segments", metavar="A:B", help="first and last segment id, e.g. c00002-s000:c00006-s003")
    chosen.add_argument("--time", metavar="START:END", help="segments whose middle lies in START:END seconds")
    chosen.add_argument("--chunks", metavar="N,M", help="comma-separated chunk ids")
    parser.add_argument("--user", help="who reruns (kept in the history)")
    parser.add_argument("--role", default="editor", choices=["viewer", "editor", "admin"])
    parser.add_argument("--classifier", help="reclassify: default, keywords or llm:<base_url>:<model>[:<variant>]")
    parser.add_argument("--variant", help="reclassify: prompt variant of an LLM classifier")
    parser.add_argument("--no-corrections", action="store_true", help="reclassify: do not learn from corrections")
    parser.add_argument("--num-speakers", type=int, help="rediarize: exact number of speakers in the span")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(handler=_rerun)
    return parser


def _rerun(args: argparse.Namespace) -> int:
    if args.kind != HISTORY and not (args.segments or args.time or args.chunks):
        msg = f"say which segments to {args.kind}: --segments A:B, --time START:END or --chunks N,M"
        raise ValueError(msg)
    if args.kind != HISTORY and not args.user:
        msg = f"--user is required to {args.kind} (it is kept in the rerun history)"
        raise ValueError(msg)
    session = Session.open(args.session_dir)
    try:
        if args.kind == HISTORY:
            history = session.rerun_history()
            with pd.option_context("display.width", 160, "display.max_colwidth", 40):
                print(history.drop(columns=["parameters"]).to_string(index=False) if len(history) else "no reruns yet")
            return 0
        selection = {"segments": args.segments, "time": args.time, "chunks": _chunk_ids(args.chunks)}
        options = {"user": args.user, "role": args.role, "progress": not args.quiet}
        if args.kind == RECLASSIFY:
            options |= {
                "classifier": args.classifier,
                "variant": args.variant,
                "use_corrections": not args.no_corrections,
            }
            rerun = session.reclassify(**selection, **options)
        else:
            rerun = session.rediarize(**selection, num_speakers=args.num_speakers, **options)
        print(f"{rerun.rerun_id}: {args.kind} of {len(rerun.segment_ids)} segments, {len(rerun.changed_ids)} changed")
        print(f"  history: {session.rerun_log.history_path}")
    finally:
        session.close()
    return 0


def _chunk_ids(value: str | None) -> list[int] | None:
    if value is None:
        return None
    try:
        return [int(part) for part in value.split(",") if part.strip()]
    except ValueError:
        msg = f"--chunks takes comma-separated chunk ids such as 3,4,5; got {value!r}"
        raise ValueError(msg) from None
