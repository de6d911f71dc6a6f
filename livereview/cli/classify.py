"""``livereview classify``: label an existing transcript without re-running the audio stages.

Input is JSON lines, one segment per line, each with at least ``text`` and ``speaker``
(a player's name, a character's name or alias, or a diarized speaker id) and optionally
``segment_id``, ``start``, ``end`` and ``is_game_master``. Output is the same lines, in
the same order, with the classification columns added.

Usage
-----
::

    livereview classify session.jsonl --party party.yaml -o labelled.jsonl
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

import pandas as pd

from livereview.core.jsonl import numbered_json_lines
from livereview.core.party import Party, load_party
from livereview.stages.classify import CLASSIFICATION_COLUMNS, resolve_classifier

_REQUIRED = ("text", "speaker")


def add_classify_command(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``classify TRANSCRIPT.jsonl [--party FILE] [--classifier NAME] -o OUT.jsonl``.

    The subcommand's ``handler`` returns 0 and raises :class:`FileNotFoundError` or
    :class:`ValueError` (one-line messages) for errors the user can fix.
    """
    parser = subparsers.add_parser(
        "classify",
        help="label an existing transcript (IC/OOC, segment type, character)",
        description=__doc__.splitlines()[0],
    )
    parser.add_argument("transcript", type=Path, metavar="TRANSCRIPT.jsonl", help="one JSON object per line")
    parser.add_argument("--party", type=Path, metavar="FILE", help="party file (YAML)")
    parser.add_argument(
        "--classifier",
        metavar="NAME",
        help="default (offline embeddings), keywords, or llm:<base_url>:<model>[:<prompt variant>]",
    )
    parser.add_argument("-o", "--output", type=Path, required=True, metavar="OUT.jsonl", help="file to write")
    parser.set_defaults(handler=_classify)
    return parser


def _classify(args: argparse.Namespace) -> int:
    count = classify_transcript(args.transcript, args.output, party=args.party, classifier=args.classifier)
    print(f"classified {count} segments into {args.output}")
    return 0


def read_transcript(path: Path) -> list[dict[str, Any]]:
    """The transcript's records, checked.

    Raises
    ------
    FileNotFoundError
        When ``path`` does not exist.
    ValueError
        On a line that is not a JSON object with a string ``text`` and ``speaker``,
        naming the file and line number.
    """
    path = Path(path)
    if not path.is_file():
        msg = f"transcript {path} not found"
        raise FileNotFoundError(msg)
    records = []
    for number, record in numbered_json_lines(path):
        if not isinstance(record, dict):
            msg = f"{path} line {number}: expected a JSON object with 'text' and 'speaker', got {type(record).__name__}"
            raise ValueError(msg)
        bad = [key for key in _REQUIRED if not isinstance(record.get(key), str)]
        if bad:
            msg = f"{path} line {number}: {' and '.join(map(repr, bad))} must be present and a string"
            raise ValueError(msg)
        records.append(record)
    return records


def transcript_frame(records: list[dict[str, Any]], party: Party | None) -> pd.DataFrame:
    """The classifier's input for transcript records (in file order).

    ``speaker`` becomes ``speaker_id``; it is the ``player`` as is, or the player of
    the character it names. ``is_game_master`` comes from the record when given, else
    from the party (unknown without one).
    """
    rows = []
    for number, record in enumerate(records, start=1):
        speaker = record["speaker"]
        character = (
            next((c for c in party.characters if speaker.casefold() in (n.casefold() for n in c.names)), None)
            if party
            else None
        )
        player = character.player if character else speaker
        flag = record.get("is_game_master")
        if not isinstance(flag, bool):
            known = party is not None and (party.is_game_master(player) or party.character_of(player) is not None)
            flag = party.is_game_master(player) if known else None
        rows.append(
            {
                "segment_id": str(record.get("segment_id", f"line-{number:05d}")),
                "start": record.get("start"),
                "end": record.get("end"),
                "text": record["text"],
                "speaker_id": speaker,
                "player": player,
                "is_game_master": flag,
                "context": False,
            }
        )
    return pd.DataFrame(
        rows, columns=["segment_id", "start", "end", "text", "speaker_id", "player", "is_game_master", "context"]
    )


def classify_transcript(
    transcript: str | Path,
    output: str | Path,
    *,
    party: str | Path | Party | None = None,
    classifier: Any = None,
) -> int:
    """Classify every line of ``transcript`` and write them, labelled, to ``output``.

    Parameters
    ----------
    transcript : str or Path
        JSON lines with ``text`` and ``speaker``.
    output : str or Path
        Where to write; its folder is created if needed.
    party : path, Party or None
        The party file or object.
    classifier : str, callable or None
        Anything :func:`~livereview.stages.classify.resolve_classifier` accepts.

    Returns
    -------
    int
        The number of lines written.
    """
    party = load_party(party) if isinstance(party, (str, Path)) else party
    records = read_transcript(Path(transcript))
    frame = transcript_frame(records, party)
    labels = resolve_classifier(classifier)(frame, party) if records else frame.iloc[:0]
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    with output.open("w", encoding="utf-8") as stream:
        for position, record in enumerate(records):
            row = labels.iloc[position]
            labelled = dict(record)
            for column in CLASSIFICATION_COLUMNS:
                value = row[column]
                if column == "ic_ooc_confidence":
                    value = None if value is None or math.isnan(float(value)) else round(float(value), 4)
                labelled[column] = value
            stream.write(json.dumps(labelled, ensure_ascii=False) + "\n")
    return len(records)
