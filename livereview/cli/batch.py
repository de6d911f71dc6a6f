"""``livereview batch``: run many recordings, on this machine or a Dask cluster.

Usage
-----
::

    livereview batch recordings/ --out output --num-speakers 4
    livereview batch manifest.csv --scheduler tcp://10.0.0.5:8786
"""

from __future__ import annotations

import argparse
from pathlib import Path

from livereview.cli.options import add_run_options, run_options


def add_batch_command(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``batch INPUT... [--scheduler ADDRESS] [--workers N] [run options]``."""
    parser = subparsers.add_parser(
        "batch", help="run many recordings (a folder, globs, files or a CSV manifest) on Dask"
    )
    parser.add_argument("inputs", nargs="+", help="recordings, folders, globs, or a CSV manifest")
    parser.add_argument("--scheduler", help="a Dask scheduler's address or scheduler file (default: a local cluster)")
    parser.add_argument("--workers", type=int, help="workers of the local cluster (default: what the machine allows)")
    parser.add_argument("--retries", type=int, default=2, help="times a recording is retried after its worker died")
    add_run_options(parser)
    parser.set_defaults(handler=_batch)
    return parser


def _batch(args: argparse.Namespace) -> int:
    from livereview.corpus import batch

    if args.workers is not None and args.workers < 1:
        msg = f"--workers must be at least 1; got {args.workers}"
        raise ValueError(msg)
    inputs = [Path(item) for item in args.inputs]
    recordings = inputs[0] if len(inputs) == 1 else inputs
    rows = batch(
        recordings,
        args.out,
        scheduler=args.scheduler,
        workers=args.workers,
        retries=args.retries,
        progress=not args.quiet,
        **run_options(args),
    )
    for row in rows.itertuples():
        detail = f": {row.error}" if row.status == "failed" else (" (done before)" if row.skipped else "")
        print(f"{row.session_id}: {row.status}{detail}")
    print(f"{len(rows)} recordings; manifest in {args.out / 'batch.jsonl'}")
    return 1 if (rows["status"] == "failed").any() else 0
