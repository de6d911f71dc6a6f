"""Which diarized speaker is the game master and which is which player: suggestions from the session's own cues.

Diarization labels voices ``SPEAKER_00``, ``SPEAKER_01``...; the speaker map
(``speaker_map.json``) says which person each one is. :func:`suggest_speaker_map` reads the
merged view and the party and suggests that map, one row per diarized speaker, from:

- **the game master's part**: the game master talks most, narrates and voices the NPCs
  (the classifier's ``segment_type`` ``DM_NARRATION`` and ``NPC_DIALOGUE``), and runs the
  table ("give me a survival check", "roll initiative", "what do you do?");
- **names said**: a character's (or a person's) name said to someone, "Morgan, what do you
  do?", "keep your axe ready, Duncan", "Duncan goes first", points at the speaker of the turn
  right after it (and, for a name said in passing, right before it); a speaker never
  addresses their own character, so it also points away from the one who says it;
- **self-references**: "I'm Morgan", "Morgan here", "my name is Morgan", and a player
  narrating their character's action, "Flint fires two arrows";
- **character tags**: the party characters the classifier (or an operator) gave this
  speaker's in-character lines;
- **what operators already said**: an entry of the speaker map, a segment whose speaker an
  operator corrected to a person of the party, and a diarized label that already is a
  person's name are taken as given (confidence 1).

The cues are added up into a score per speaker and person; an assignment
(:func:`scipy.optimize.linear_sum_assignment`) then gives each person at most one speaker
(a speaker may also be left without one). A suggestion's confidence is how much the best
whole assignment loses when that one pairing is forbidden, as ``1 - exp(-loss)``: a pairing
nothing else could replace is near 1, a coin toss is 0 and is not suggested.

Everything here is pure: DataFrames in, a DataFrame out.
:meth:`~livereview.review.session.Session.suggest_speaker_map` calls it with the session's
view, party, speaker map and corrections; :meth:`~livereview.review.session.Session.confirm_speaker_map`
writes the suggestions into ``speaker_map.json``.
"""

from __future__ import annotations

import math
import re
from collections import Counter, defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy.optimize import linear_sum_assignment

from livereview.core.corrections import OVERRIDDEN_COLUMN
from livereview.core.party import Party

#: Columns of :func:`suggest_speaker_map`'s table, in order.
SUGGESTION_COLUMNS = ("speaker_id", "player", "character", "role", "confidence", "evidence", "given")
GAME_MASTER, PLAYER = "game master", "player"
#: Segment types the game master speaks.
NARRATION_TYPES = ("DM_NARRATION", "NPC_DIALOGUE")

#: Weight of the game master's part (a score from 0 to 1) against the players' cues.
ROLE_WEIGHT = 3.0
#: Weights of the game master's part: talk time, narration/NPC share, table-running lines.
ROLE_CUES = {"talk": 0.5, "narration": 0.3, "running": 0.2}
#: A speaker addressed by name in the turn right after the one who says it (a turn call or a vocative).
ADDRESS_NEXT = 1.0
#: A speaker addressed by a vocative in the turn right before it (a reply: "always ready, Flint").
ADDRESS_PREVIOUS = 0.75
#: A speaker saying their own character's name to someone: they are not that character.
SELF_ADDRESS = -1.0
#: "I'm Morgan", "Morgan here", "my name is Morgan".
SELF_INTRODUCTION = 2.0
#: "Flint fires two arrows": a player narrating their character's action.
SELF_NARRATION = 1.0
#: One in-character line tagged with a party character, and the most the tags count for in all.
TAG_WEIGHT, TAG_CAP = 0.5, 2.5
#: Given to every person when the table has as many people as speakers to place (each person is one of them).
ELIMINATION = 0.25
#: Seconds between a name said and the turn it points at.
MAX_GAP_SECONDS = 10.0
#: Narration/NPC seconds (share of all talk) below which the classifier's segment types are not used.
MIN_NARRATION_SHARE = 0.03
#: A pairing whose forbidding loses less than this is a tie: nothing suggested.
MIN_MARGIN = 1e-6

_BIG = 1e6
_LEAD = r"(?:okay|ok|so|alright|all right|right|then|now|and|well)\s*,?\s+"
_NOT_ACTIONS = ("is", "was", "has", "does", "goes", "says", "seems", "looks")
_TABLE_RUNNING = re.compile(
    r"\bwhat (?:do|will|does) (?:you|\w+) do\b"
    r"|\b(?:give me|make|roll|let'?s have|i need)\b[^.!?]{0,30}\b(?:check|save|saving throw|initiative|roll)\b"
    r"|\broll (?:it|for|with|initiative|a|an|me)\b|\bgo ahead and roll\b|\beverybody roll\b"
    r"|\byou (?:see|find|hear|notice|climb|enter|arrive|reach|smell|feel)\b|\blooks up at you\b",
    re.IGNORECASE,
)


def _key(name: str) -> str:
    return " ".join(str(name).split()).casefold()


@dataclass(frozen=True)
class _Name:
    """A name said at the table and the person it names."""

    text: str
    person: str
    character: str | None  # the character the name is of; None for a person's own name


@dataclass
class _Cues:
    """What points from one speaker to one person: weights and counts by kind."""

    score: float = 0.0
    counts: Counter[str] = field(default_factory=Counter)
    names: dict[str, str] = field(default_factory=dict)  # kind -> the name last said
    quote: str = ""

    def add(self, kind: str, weight: float, name: str, quote: str = "") -> None:
        self.score += weight
        self.counts[kind] += 1
        self.names[kind] = name
        if quote and not self.quote:
            self.quote = quote


def suggest_speaker_map(
    view: pd.DataFrame,
    party: Party | None = None,
    *,
    speaker_map: Mapping[str, str] | None = None,
    corrections: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Suggest which person each diarized speaker is: the game master, or which player.

    Parameters
    ----------
    view : pandas.DataFrame
        The merged view (:meth:`Session.view`): ``start``, ``end``, ``text``, ``speaker_id``,
        ``segment_type``, ``ic_ooc``, ``character_tag`` and ``overridden``, one row per segment.
    party : Party, optional
        The game master and the characters with their players. **Without a party only the game
        master is suggested**: the speaker who talks and narrates most gets the role ``"game
        master"``, every other speaker ``"player"``, and no row names a person (the names are
        unknown), except where an operator's speaker map or corrections already name one.
    speaker_map : mapping, optional
        Diarized speaker -> person already kept (``speaker_map.json``): taken as given.
    corrections : pandas.DataFrame, optional
        The corrections in effect (:meth:`Session.overrides`: ``segment_id``, ``field``,
        ``value``, ``base_value``). A segment whose speaker an operator corrected to a person of
        the party (without a party: to a name the diarization never gave) says its diarized
        speaker (``base_value``) is that person: taken as given. When an operator named one
        speaker's segments after several people, the most named wins.

    Returns
    -------
    pandas.DataFrame
        One row per diarized speaker, most talk first: ``speaker_id``; ``player``, the person
        suggested (the game master's name for the game master; NaN when nothing points to
        one); ``character``, that player's character (NaN for the game master or none);
        ``role``, ``"game master"`` or ``"player"``; ``confidence``, 0 to 1 (1 for what is
        given; 0 where nothing is suggested); ``evidence``, the cues in words, e.g. "62% of
        talk time, 80% narration/NPC lines"; ``given``, whether the row comes from the speaker
        map, a correction or a label that already is a person's name.
    """
    speaker_map = dict(speaker_map or {})
    rows = _rows(view)
    people = {_key(p): p for p in party.people()} if party is not None else {}
    base_labels = _base_labels(rows, corrections)
    person_of_label = {label: people[_key(label)] for label in base_labels if _key(label) in people}
    speakers = sorted(base_labels - set(person_of_label))
    speakers += sorted(person_of_label)
    seconds = rows.groupby("speaker")["seconds"].sum()
    total = float(seconds.sum()) or 1.0
    share = {s: float(seconds.get(s, 0.0)) / total for s in speakers}
    role = _role_scores(rows, speakers, share)

    given = _given(speakers, speaker_map, person_of_label, corrections, people, base_labels)
    rest = [s for s in speakers if s not in given]
    taken = {_key(person) for person, _, _ in given.values()}
    # Without a party the people's names are unknown: only the game master's part is placed.
    persons = [GAME_MASTER] if party is None else [p for p in dict.fromkeys(party.people()) if _key(p) not in taken]
    cues = _name_cues(rows, rest, party) if party is not None else {}
    scores = np.zeros((len(rest), len(persons)))
    for i, speaker in enumerate(rest):
        for j, person in enumerate(persons):
            if person == GAME_MASTER or _is_gm(person, party):
                scores[i, j] = ROLE_WEIGHT * role[speaker]["score"]
            else:
                scores[i, j] = cues.get(speaker, {}).get(person, _Cues()).score
    if party is not None and 0 < len(rest) <= len(persons):
        scores += ELIMINATION
    chosen, margins = _assign(scores)

    records = []
    for speaker in speakers:
        if speaker in given:
            person, confidence, why = given[speaker]
            records.append(_record(speaker, person, party, confidence, why, given=True))
            continue
        i = rest.index(speaker)
        j = chosen.get(i)
        margin = margins.get(i, 0.0)
        talk = _talk_words(share[speaker])
        if j is None or margin < MIN_MARGIN:
            why = _nothing(speaker, cues) if party is not None else "the players' names are unknown without a party"
            records.append(_record(speaker, None, party, 0.0, f"{talk}; {why}"))
            continue
        person = persons[j]
        confidence = 1.0 - math.exp(-margin)
        if person == GAME_MASTER or _is_gm(person, party):
            why = _role_words(share[speaker], role[speaker])
            named = None if person == GAME_MASTER else person
            records.append(_record(speaker, named, party, confidence, why, role=GAME_MASTER))
            continue
        found = cues.get(speaker, {}).get(person)
        words = _cue_words(found) if found is not None and found.score > 0 else []
        if not words:
            words = ["the one player left for it once the others are placed"]
        records.append(_record(speaker, person, party, confidence, f"{talk}; " + ", ".join(words)))
    table = pd.DataFrame.from_records(records, columns=list(SUGGESTION_COLUMNS))
    order = sorted(range(len(table)), key=lambda k: (-share.get(table.at[k, "speaker_id"], 0.0), speakers[k]))
    return table.iloc[order].reset_index(drop=True)


# -- the rows and the speakers -------------------------------------------------------------------


def _rows(view: pd.DataFrame) -> pd.DataFrame:
    """The view's rows with a speaker, in time order: speaker, seconds, text, type, IC/OOC, tag, speaker corrected."""
    needed = ("start", "end", "speaker_id")
    missing = [name for name in needed if name not in view.columns]
    if missing:
        msg = f"suggest_speaker_map needs the merged view's columns {missing}; pass session.view()"
        raise ValueError(msg)
    frame = view.sort_values(["start", "end"], kind="stable")

    def column(name: str) -> pd.Series:
        values = frame[name] if name in frame.columns else pd.Series("", index=frame.index)
        return values.astype(object).where(values.notna(), "").astype(str)

    overridden = frame[OVERRIDDEN_COLUMN].tolist() if OVERRIDDEN_COLUMN in frame.columns else [()] * len(frame)
    rows = pd.DataFrame(
        {
            "start": frame["start"].astype(float).to_numpy(),
            "end": frame["end"].astype(float).to_numpy(),
            "speaker": column("speaker_id").to_numpy(),
            "text": column("text").to_numpy(),
            "segment_type": column("segment_type").to_numpy(),
            "ic_ooc": column("ic_ooc").to_numpy(),
            "character_tag": column("character_tag").to_numpy(),
            "corrected": [isinstance(v, tuple | list | set | frozenset) and "speaker_id" in v for v in overridden],
        }
    )
    rows["seconds"] = (rows["end"] - rows["start"]).clip(lower=0.0)
    return rows[rows["speaker"] != ""].reset_index(drop=True)


def _speaker_corrections(corrections: pd.DataFrame | None) -> pd.DataFrame:
    if corrections is None or len(corrections) == 0 or "field" not in corrections.columns:
        return pd.DataFrame(columns=["segment_id", "value", "base_value"])
    found = corrections[corrections["field"] == "speaker_id"]
    found = found[found["value"].notna() & found["base_value"].notna()]
    return found[["segment_id", "value", "base_value"]].astype({"value": str, "base_value": str})


def _base_labels(rows: pd.DataFrame, corrections: pd.DataFrame | None) -> set[str]:
    """The labels the diarization gave: speakers of rows no operator re-voiced, and the model's speakers of those."""
    labels = set(rows.loc[~rows["corrected"], "speaker"])
    labels |= set(_speaker_corrections(corrections)["base_value"])
    return {label for label in labels if label}


def _given(
    speakers: list[str],
    speaker_map: Mapping[str, str],
    person_of_label: Mapping[str, str],
    corrections: pd.DataFrame | None,
    people: Mapping[str, str],
    base_labels: set[str],
) -> dict[str, tuple[str, float, str]]:
    """Speaker -> (person, confidence, evidence) for what operators already said."""
    given: dict[str, tuple[str, float, str]] = {}
    named: dict[str, Counter[str]] = defaultdict(Counter)
    for _, row in _speaker_corrections(corrections).iterrows():
        value = row["value"]
        person = people.get(_key(value)) if people else (value if value not in base_labels else None)
        if person is not None:
            named[row["base_value"]][person] += 1
    for speaker in speakers:
        if speaker in speaker_map:
            given[speaker] = (speaker_map[speaker], 1.0, "in speaker_map.json")
        elif speaker in person_of_label:
            given[speaker] = (person_of_label[speaker], 1.0, f"already named {person_of_label[speaker]}")
        elif named.get(speaker):
            counts = named[speaker]
            person, count = counts.most_common(1)[0]
            total = sum(counts.values())
            lines = f"{count} of its lines" if total > 1 or count > 1 else "one of its lines"
            given[speaker] = (person, count / total, f"an operator corrected {lines} to {person}")
    return given


def _is_gm(person: str, party: Party | None) -> bool:
    return party is not None and party.is_game_master(person)


# -- the game master's part ----------------------------------------------------------------------


def _role_scores(rows: pd.DataFrame, speakers: list[str], share: Mapping[str, float]) -> dict[str, dict[str, float]]:
    """Per speaker: ``score`` (0-1, how much it sounds like the game master), ``narration``, ``running`` shares."""
    by_speaker = {speaker: rows[rows["speaker"] == speaker] for speaker in speakers}
    narration = {
        s: float(r["segment_type"].isin(NARRATION_TYPES).mean()) if len(r) else 0.0 for s, r in by_speaker.items()
    }
    running = {
        s: float(r["text"].map(lambda text: bool(_TABLE_RUNNING.search(text))).mean()) if len(r) else 0.0
        for s, r in by_speaker.items()
    }
    narrated = float(rows.loc[rows["segment_type"].isin(NARRATION_TYPES), "seconds"].sum())
    talked = float(rows["seconds"].sum()) or 1.0
    cues = [("talk", share)]
    if narrated / talked >= MIN_NARRATION_SHARE:
        cues.append(("narration", narration))
    if any(running.values()):
        cues.append(("running", running))
    weight = sum(ROLE_CUES[name] for name, _ in cues)
    scores = {}
    for speaker in speakers:
        total = 0.0
        for name, values in cues:
            top = max(values.values(), default=0.0) or 1.0
            total += ROLE_CUES[name] * values.get(speaker, 0.0) / top
        scores[speaker] = {"score": total / weight, "narration": narration[speaker], "running": running[speaker]}
    return scores


# -- names said ----------------------------------------------------------------------------------


def _names(party: Party) -> list[_Name]:
    """Every name the table may say: characters and their aliases, then the people's own names."""
    names = [
        _Name(name, character.player, character.name) for character in party.characters for name in character.names
    ]
    names += [_Name(person, person, None) for person in dict.fromkeys(party.people())]
    seen: set[str] = set()
    unique = []
    for name in names:
        if _key(name.text) not in seen:
            seen.add(_key(name.text))
            unique.append(name)
    return unique


def _patterns(name: str) -> tuple[list[re.Pattern[str]], list[re.Pattern[str]], list[re.Pattern[str]], re.Pattern[str]]:
    """Turn calls (point at the next turn), vocatives (next and previous), introductions, and self-narration."""
    n = r"\s+".join(re.escape(part) for part in name.split())
    flags = re.IGNORECASE
    calls = [
        re.compile(rf"\b{n}\b[^.!?]{{0,25}}\bwhat (?:do|will) you do\b", flags),
        re.compile(rf"\b{n}(?:'s|’s)\s+turn\b|\byour turn,?\s+{n}\b", flags),
        re.compile(rf"\b{n}\s*,?\s+(?:goes first|goes next|is up|is next|you'?re up|you are up|your turn)\b", flags),
        re.compile(rf"\bwhat (?:does|will) {n} do\b", flags),
    ]
    vocatives = [
        re.compile(rf"(?:^|[.!?]\s+|,\s*)(?:hey\s+|{_LEAD})?{n}\s*,", flags),
        re.compile(rf",\s*{n}\s*(?:[.!?]|$)", flags),
        re.compile(rf"\b(?:thanks|thank you|sorry|hi|hey|hello|go ahead|come on)\s*,?\s+{n}\b", flags),
    ]
    introductions = [
        re.compile(
            rf"\b(?:i'?m|i am|my name is|my name's|call me|this is|it's|i play|i'?m playing)\s+{n}\b(?!['’]s)", flags
        ),
        re.compile(rf"\b{n}\s+here\b", flags),
    ]
    narration = re.compile(rf"(?:^|[.!?]\s+)(?:{_LEAD})?{n}\s+(?!(?:{'|'.join(_NOT_ACTIONS)})\b)[a-z]+s\b", flags)
    return calls, vocatives, introductions, narration


def _name_cues(rows: pd.DataFrame, speakers: list[str], party: Party) -> dict[str, dict[str, _Cues]]:
    """Speaker -> person -> what the names said, the self-references and the character tags point at."""
    wanted = set(speakers)
    cues: dict[str, dict[str, _Cues]] = defaultdict(lambda: defaultdict(_Cues))
    names = _names(party)
    patterns = {name.text: _patterns(name.text) for name in names}
    anyone = re.compile(
        r"\b(?:" + "|".join(r"\s+".join(map(re.escape, n.text.split())) for n in names) + r")\b", re.IGNORECASE
    )
    speakers_of = rows["speaker"].tolist()
    starts, ends = rows["start"].to_numpy(), rows["end"].to_numpy()
    for index, text in enumerate(rows["text"]):
        if not anyone.search(text):
            continue
        sayer = speakers_of[index]
        for name in names:
            calls, vocatives, introductions, narration = patterns[name.text]
            called = any(p.search(text) for p in calls)
            vocative = not called and any(p.search(text) for p in vocatives)
            if called or vocative:
                if sayer in wanted:
                    cues[sayer][name.person].add("self-address", SELF_ADDRESS, name.text)
                after = _neighbour(speakers_of, starts, ends, index, +1)
                if after is not None and after in wanted:
                    cues[after][name.person].add("addressed", ADDRESS_NEXT, name.text)
                before = _neighbour(speakers_of, starts, ends, index, -1) if vocative else None
                if before is not None and before in wanted:
                    cues[before][name.person].add("addressed", ADDRESS_PREVIOUS, name.text)
            elif sayer in wanted and any(p.search(text) for p in introductions):
                cues[sayer][name.person].add("introduction", SELF_INTRODUCTION, name.text, _quote(text))
            elif sayer in wanted and name.character is not None and narration.search(text):
                cues[sayer][name.person].add("narration", SELF_NARRATION, name.text, _quote(text))
    characters = {_key(n.text): n for n in names if n.character is not None}
    tagged = rows[(rows["ic_ooc"] != "OOC") & rows["speaker"].isin(wanted)]
    for speaker, tag in zip(tagged["speaker"], tagged["character_tag"], strict=True):
        name = characters.get(_key(tag)) if tag else None
        if name is not None:
            found = cues[speaker][name.person]
            weight = min(TAG_WEIGHT, max(TAG_CAP - TAG_WEIGHT * found.counts["tag"], 0.0))
            found.add("tag", weight, name.character or name.text)
    return cues


def _neighbour(speakers: list[str], starts: np.ndarray, ends: np.ndarray, index: int, step: int) -> str | None:
    """The speaker of the nearest turn of another speaker before (``step=-1``) or after row ``index``."""
    own = speakers[index]
    other = index + step
    while 0 <= other < len(speakers) and speakers[other] == own:
        other += step
    if not 0 <= other < len(speakers):
        return None
    gap = starts[other] - ends[index] if step > 0 else starts[index] - ends[other]
    return speakers[other] if gap <= MAX_GAP_SECONDS else None


def _quote(text: str, words: int = 5) -> str:
    parts = text.split()
    return " ".join(parts[:words]) + ("…" if len(parts) > words else "")


# -- the assignment ------------------------------------------------------------------------------


def _assign(scores: np.ndarray) -> tuple[dict[int, int], dict[int, float]]:
    """The best assignment (row -> column; a row may stay unassigned) and, per assigned row,
    what the best total loses when that pairing is forbidden."""
    rows, columns = scores.shape
    if rows == 0 or columns == 0:
        return {}, {}
    padded = np.hstack([scores, np.zeros((rows, rows))])  # one "no one" column per speaker
    best, chosen = _solve(padded)
    assigned = {r: c for r, c in chosen.items() if c < columns}
    margins = {}
    for r, c in assigned.items():
        forbidden = padded.copy()
        forbidden[r, c] = -_BIG
        margins[r] = best - _solve(forbidden)[0]
    return assigned, margins


def _solve(scores: np.ndarray) -> tuple[float, dict[int, int]]:
    rows, columns = linear_sum_assignment(scores, maximize=True)
    return float(scores[rows, columns].sum()), dict(zip(rows.tolist(), columns.tolist(), strict=True))


# -- rows in words -------------------------------------------------------------------------------


def _record(
    speaker: str,
    person: str | None,
    party: Party | None,
    confidence: float,
    evidence: str,
    *,
    role: str | None = None,
    given: bool = False,
) -> dict[str, Any]:
    character = party.character_of(person) if party is not None else None
    return {
        "speaker_id": speaker,
        "player": person if person is not None else np.nan,
        "character": character.name if character is not None else np.nan,
        "role": role or (GAME_MASTER if _is_gm(person, party) else PLAYER),
        "confidence": round(float(confidence), 3),
        "evidence": evidence,
        "given": given,
    }


def _talk_words(share: float) -> str:
    return f"{share:.0%} of talk time"


def _role_words(share: float, role: Mapping[str, float]) -> str:
    narration = f"{role['narration']:.0%}" if role["narration"] > 0 else "no"
    words = f"{_talk_words(share)}, {narration} narration/NPC lines"
    if role["running"] > 0:
        words += f", {role['running']:.0%} of its lines run the table"
    return words


def _cue_words(found: _Cues) -> list[str]:
    counts, names = found.counts, found.names
    words = []
    if counts["introduction"]:
        words.append(f"introduces itself as {names['introduction']} (“{found.quote}”)")
    if counts["narration"]:
        times = f" {counts['narration']}×" if counts["narration"] > 1 else ""
        quote = f" (“{found.quote}”)" if not counts["introduction"] else ""
        words.append(f"narrates {names['narration']}'s actions{times}{quote}")
    if counts["addressed"]:
        times = f" {counts['addressed']}×" if counts["addressed"] > 1 else ""
        words.append(f"answers to {names['addressed']}{times}")
    if counts["tag"]:
        lines = "line" if counts["tag"] == 1 else "lines"
        words.append(f"{counts['tag']} IC {lines} tagged {names['tag']}")
    return words


def _nothing(speaker: str, cues: Mapping[str, Mapping[str, _Cues]]) -> str:
    if any(found.score > 0 for found in cues.get(speaker, {}).values()):
        return "its cues point to a person another speaker fits better"
    return "nothing points to a person"
