"""``livereview snippets`` and ``livereview knowledge``: downstream artifacts from the command line.

Usage
-----
::

    livereview snippets output/game-night --select ic --by speaker --format ogg -o clips/ --zip
    livereview knowledge output/game-night -o knowledge.json
    livereview knowledge transcript.jsonl --party party.yaml -o knowledge.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd

from livereview.cli.classify import read_transcript, transcript_frame
from livereview.core.party import Party, load_party
from livereview.review.session import Session
from livereview.review.snippets import FORMATS, GROUPINGS, SELECTIONS
from livereview.review.story import knowledge_of_frame
from livereview.stages.classify import resolve_classifier


def add_snippets_command(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``snippets SESSION_DIR [--select ...] [--by ...] [--format ...] [-o DIR] [--zip]``."""
    parser = subparsers.add_parser(
        "snippets",
        help="cut audio clips per segment, speaker or scene, with a manifest",
        description="Cut audio clips of a session from its recording (corrections included), with a manifest.",
    )
    parser.add_argument("session_dir", type=Path, metavar="SESSION_DIR", help="a session directory")
    parser.add_argument("--select", default="all", choices=list(SELECTIONS), help="all, ic or ooc segments")
    parser.add_argument("--by", default="segment", choices=list(GROUPINGS), help="a clip per segment, speaker or scene")
    parser.add_argument("--format", default="flac", choices=list(FORMATS), dest="fmt", help="flac, wav or ogg (Opus)")
    parser.add_argument("-o", "--output", type=Path, metavar="DIR", help="folder (default: SESSION_DIR/snippets/...)")
    parser.add_argument("--zip", action="store_true", help="also write DIR.zip")
    parser.add_argument("--recording", type=Path, help="the recording, when it has moved (same file)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(handler=_snippets)
    return parser


def _snippets(args: argparse.Namespace) -> int:
    session = Session.open(args.session_dir)
    try:
        result = session.export_snippets(
            args.select,
            args.by,
            args.fmt,
            args.output,
            archive=args.zip,
            recording=args.recording,
            progress=not args.quiet,
        )
    finally:
        session.close()
    print(
        f"{len(result.manifest)} clips in {result.directory} ({len(result.written)} written, "
        f"{len(result.kept)} unchanged, {len(result.removed)} removed)"
    )
    if result.archive is not None:
        print(f"archive: {result.archive}")
    return 0


def add_knowledge_command(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``knowledge SESSION_DIR|TRANSCRIPT.jsonl [--party FILE] [--backend B] -o OUT.json``."""
    parser = subparsers.add_parser(
        "knowledge",
        help="entities (NPCs, places, items, factions) with every mention, and quest/hook candidates",
        description="Build the knowledge base of a session directory or of a transcript (JSON lines with text "
        "and speaker, as classify reads).",
    )
    parser.add_argument("source", type=Path, metavar="SESSION_DIR|TRANSCRIPT.jsonl")
    parser.add_argument("--party", type=Path, metavar="FILE", help="party file (YAML); a session has its own")
    parser.add_argument("--backend", default="offline", help="offline (default) or llm:<base_url>:<model>")
    parser.add_argument("--include-ooc", action="store_true", help="keep entities named only out of character")
    parser.add_argument(
        "--classify", action="store_true", help="label a transcript's lines IC/OOC first (default classifier)"
    )
    parser.add_argument("-o", "--output", type=Path, required=True, metavar="OUT.json", help="file to write")
    parser.set_defaults(handler=_knowledge)
    return parser


def _knowledge(args: argparse.Namespace) -> int:
    if args.source.is_dir():
        session = Session.open(args.source)
        try:
            knowledge = session.knowledge(backend=args.backend, include_ooc=args.include_ooc)
        finally:
            session.close()
    else:
        party = load_party(args.party) if args.party is not None else None
        frame = transcript_lines(args.source, party, classify=args.classify)
        knowledge = knowledge_of_frame(frame, party, backend=args.backend, include_ooc=args.include_ooc)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(knowledge.to_dict(), ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    counts = knowledge.entities["type"].value_counts().to_dict()
    print(f"{len(knowledge.entities)} entities {counts}, {len(knowledge.mentions)} mentions into {args.output}")
    return 0


def transcript_lines(path: Path, party: Party | None, *, classify: bool = False) -> pd.DataFrame:
    """A transcript (JSON lines with ``text`` and ``speaker``) as a segment table for the knowledge stage.

    Lines keep their own ``ic_ooc``, ``segment_type`` and ``character_tag`` when they have
    them; with ``classify=True`` lines without ``ic_ooc`` are labelled by the default classifier.
    """
    records = read_transcript(path)
    frame = transcript_frame(records, party)
    frame = frame.assign(
        start=pd.to_numeric(frame["start"], errors="coerce").fillna(0.0),
        end=pd.to_numeric(frame["end"], errors="coerce").fillna(0.0),
        **{column: [r.get(column) for r in records] for column in ("ic_ooc", "segment_type", "character_tag")},
    )
    unlabelled = frame["ic_ooc"].isna().to_numpy()
    if classify and unlabelled.any():
        labels = resolve_classifier(None)(frame[unlabelled], party)
        for column in ("ic_ooc", "segment_type", "character_tag"):
            frame.loc[unlabelled, column] = labels[column].to_numpy()
    return frame
