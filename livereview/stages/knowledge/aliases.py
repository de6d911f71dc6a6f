"""From mentions to entities: typing each name and merging the names of one entity (aliases).

Surface forms are grouped by their normalized name ("the Crooked Lantern's" ->
``crooked lantern``); the party's aliases go to their character. Two names of compatible
types are then merged when one is contained in the other once titles are set aside
("Briarwood" in "Lord Briarwood", unless it would fit two different entities), when one is
the other's first part ("Vax" and "Vax'ildan"), or when they are spelled alike (a speech
recognizer's variants, "Zeenoth" and "Zenoth") and MiniLM does not find the two names
unrelated. An entity's type is the vote of its mentions (a context cue counts three times,
spaCy's label once); names nothing typed are typed by MiniLM, comparing the lines that mention
them with short descriptions of each type.
"""

from __future__ import annotations

import itertools
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from rapidfuzz import fuzz

from livereview.core.party import Party
from livereview.core.segments import OOC
from livereview.stages.knowledge.extract import MECHANICS, PLAYER, PROPER_NOUN, TITLES, label_type
from livereview.stages.knowledge.schema import ENTITY_COLUMNS, FACTION, ITEM, MENTION_COLUMNS, NPC, PC, PLACE

Encoder = Callable[[Sequence[str]], np.ndarray]

#: Least spelling similarity (rapidfuzz ratio, 0-100) for two names to be one spelt two ways, their
#: least length, and the least MiniLM cosine of the two names (a veto on look-alike words that mean
#: different things; on rare names MiniLM alone is no spelling measure: "Zeenoth"/"Zenoth" 0.44,
#: "Kern"/"Kerna" 0.85).
SPELLING_SIMILARITY = 88.0
SPELLING_MIN_LENGTH = 5
EMBEDDING_SIMILARITY = 0.3
#: Weight of a context cue's vote for a mention's type (the recognizer's label counts 1).
CUE_WEIGHT = 3
#: Mentions a name needs when only the proper-noun runs (not spaCy's recognizer) found it.
MIN_PROPER_NOUN_MENTIONS = 2
#: Least MiniLM margin over the runner-up for the type of a name no mention typed.
TYPE_MARGIN = 0.02

#: What each type's lines sound like, for typing names by MiniLM.
TYPE_PROTOTYPES: dict[str, tuple[str, ...]] = {
    NPC: ("someone says hello and asks you a question", "he tells them what happened", "she attacks you"),
    PLACE: ("we travel to the city", "you arrive in the town", "the road leads there through the forest"),
    ITEM: ("you pick up the magic sword", "he wields the weapon", "she drinks the potion from the bag"),
    FACTION: ("the guild sends its members", "the order of knights", "the army of the empire marches"),
}

_PERSONS = {NPC, PC}


@dataclass
class Form:
    """One normalized name with its mentions' votes.

    Attributes
    ----------
    key : str
        Normalized name (case-folded, no article or possessive).
    surfaces : Counter
        How it was said, and how often.
    votes : Counter
        Type hints of its mentions.
    pinned : str, optional
        The party character it names (then its type is ``PC``).
    contexts : list of str
        Lines it occurs in (a few), for typing by MiniLM.
    cued : bool
        Whether a context cue or a known name typed it (else only spaCy's labels or MiniLM did).
    """

    key: str
    surfaces: Counter[str] = field(default_factory=Counter)
    votes: Counter[str] = field(default_factory=Counter)
    pinned: str | None = None
    contexts: list[str] = field(default_factory=list)
    cued: bool = False

    @property
    def type(self) -> str | None:
        if self.pinned is not None:
            return PC
        return self.votes.most_common(1)[0][0] if self.votes else None

    @property
    def name(self) -> str:
        """The most frequent surface, ties to the longest."""
        return max(self.surfaces.items(), key=lambda item: (item[1], len(item[0])))[0]


def normalize(name: str) -> str:
    """The name as compared: case-folded, no leading article, no possessive, single spaces."""
    name = re.sub(r"(?:'s|’s)$", "", " ".join(name.split()))
    name = re.sub(r"^(?:the|a|an)\s+", "", name, flags=re.IGNORECASE)
    return name.casefold().strip(" .,;:!?\"'")


def build_entities(
    raw: pd.DataFrame,
    *,
    party: Party | None = None,
    encoder: Encoder | None = None,
    texts: dict[str, str] | None = None,
    include_ooc: bool = False,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Type and merge raw mentions (:func:`~livereview.stages.knowledge.extract.extract_mentions`).

    Parameters
    ----------
    raw : pandas.DataFrame
        Raw mentions.
    party : Party, optional
        Pins the characters' names and aliases to one ``PC`` entity each.
    encoder : callable, optional
        ``encoder(texts) -> (n, d)`` unit-norm embeddings; the offline MiniLM encoder by default.
    texts : dict, optional
        Segment id -> line text, the contexts for typing by MiniLM.
    include_ooc : bool
        Keep entities only ever mentioned out of character (real people, snacks, the stream).

    Returns
    -------
    entities, mentions : pandas.DataFrame
        With :data:`~livereview.stages.knowledge.schema.ENTITY_COLUMNS` and
        :data:`~livereview.stages.knowledge.schema.MENTION_COLUMNS`.
    """
    raw = raw[raw["hint"] != PLAYER]
    if raw.empty:
        return pd.DataFrame(columns=list(ENTITY_COLUMNS)), pd.DataFrame(columns=list(MENTION_COLUMNS))
    pinned = _party_names(party)
    forms: dict[str, Form] = {}
    keys = []
    for surface, hint, label, segment_id in zip(
        raw["surface"], raw["hint"], raw["label"], raw["segment_id"], strict=True
    ):
        key = pinned.get(normalize(surface), normalize(surface))
        form = forms.setdefault(key, Form(key))
        form.surfaces[surface] += 1
        if isinstance(hint, str):
            form.votes[hint] += CUE_WEIGHT
            form.cued = True
        if label_type(label) is not None:
            form.votes[label_type(label)] += 1
        if key in pinned.values():
            form.pinned = key
        if texts and len(form.contexts) < 8 and segment_id in texts:
            form.contexts.append(texts[segment_id])
        keys.append(key)
    encoder = encoder or _default_encoder()
    ordered = list(forms.values())
    type_untyped(ordered, encoder)
    cluster = cluster_forms(ordered, encoder)
    return _tables(raw.assign(key=keys), ordered, cluster, party, include_ooc)


def _default_encoder() -> Encoder:
    from livereview.stages.classify.features import load_encoder

    return load_encoder()


def _party_names(party: Party | None) -> dict[str, str]:
    """Normalized character name or alias -> normalized character name."""
    if party is None:
        return {}
    return {normalize(name): normalize(c.name) for c in party.characters for name in c.names}


def type_untyped(forms: Sequence[Form], encoder: Encoder) -> None:
    """Vote a type for each form no mention typed, by MiniLM similarity of its lines to :data:`TYPE_PROTOTYPES`."""
    untyped = [form for form in forms if form.type is None and form.contexts]
    if not untyped:
        return
    types = list(TYPE_PROTOTYPES)
    prototypes = np.stack([encoder(list(TYPE_PROTOTYPES[t])).mean(axis=0) for t in types])
    prototypes /= np.linalg.norm(prototypes, axis=1, keepdims=True)
    for form in untyped:
        lines = [re.sub(re.escape(form.name), "it", line, flags=re.IGNORECASE) for line in form.contexts]
        context = encoder(lines).mean(axis=0)
        scores = prototypes @ (context / (np.linalg.norm(context) or 1.0))
        best, second = np.argsort(-scores)[:2]
        if scores[best] - scores[second] >= TYPE_MARGIN:
            form.votes[types[best]] += 1


def _words(key: str) -> list[str]:
    """Name words of a normalized name, titles set aside (all of them when it is only titles)."""
    words = re.split(r"[\s-]+", key)
    named = [w for w in words if w not in TITLES]
    return named or words


def _compatible(a: Form, b: Form) -> bool:
    """Whether two forms may name one entity: same type, two persons, or one typed by labels only."""
    if a.type is None or b.type is None or not (a.cued and b.cued):
        return True
    return a.type == b.type or (a.type in _PERSONS and b.type in _PERSONS)


def cluster_forms(
    forms: Sequence[Form], encoder: Encoder | None = None, links: Sequence[tuple[int, int]] = ()
) -> list[int]:
    """The entity (a cluster index) of each form: forms that name the same entity share one.

    Rules, between forms of compatible types: the same name words with no clashing titles;
    one's name words are all in the other's and
    no other form of a different entity would take them; one is the first part of the
    other ("vax" of "vax'ildan", at least three letters); spelled alike
    (:data:`SPELLING_SIMILARITY`, same first letter, :data:`SPELLING_MIN_LENGTH` letters or
    more) unless MiniLM finds the two names unrelated (:data:`EMBEDDING_SIMILARITY`). Two party
    characters never merge. ``links`` are pairs of form positions known to name one entity (a
    session's entity and its aliases).
    """
    parent = list(range(len(forms)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    def union(i: int, j: int) -> None:
        a, b = find(i), find(j)
        if a == b:
            return
        pins = {forms[k].pinned for k in range(len(forms)) if find(k) in (a, b)} - {None}
        if len(pins) > 1:
            return
        parent[max(a, b)] = min(a, b)

    for i, j in links:
        union(i, j)
    words = [set(_words(f.key)) for f in forms]
    titles = [set(re.split(r"[\s-]+", f.key)) & TITLES for f in forms]
    same: dict[frozenset[str], list[int]] = {}
    for i, named in enumerate(words):
        same.setdefault(frozenset(named), []).append(i)
    for group in same.values():  # one name with or without a title ("Lord Briarwood", "Briarwood")
        for i, j in itertools.combinations(group, 2):
            if _compatible(forms[i], forms[j]) and (not titles[i] or not titles[j] or titles[i] == titles[j]):
                union(i, j)
    for i, form in enumerate(forms):
        hosts = [j for j, other in enumerate(forms) if j != i and words[i] <= words[j] and _compatible(form, other)]
        if hosts and _nested([words[j] for j in hosts]):
            for j in hosts:
                union(i, j)
    for i, a in enumerate(forms):
        for j in range(i + 1, len(forms)):
            if _compatible(a, forms[j]) and _is_first_part(a.key, forms[j].key):
                union(i, j)
    if encoder is not None and len(forms) > 1:
        names = [f.key for f in forms]
        vectors = encoder(names)
        similar = np.argwhere(np.triu(vectors @ vectors.T >= EMBEDDING_SIMILARITY, k=1))
        for i, j in similar:
            if (
                min(len(names[i]), len(names[j])) >= SPELLING_MIN_LENGTH
                and names[i][:1] == names[j][:1]
                and _compatible(forms[i], forms[j])
                and fuzz.ratio(names[i], names[j]) >= SPELLING_SIMILARITY
            ):
                union(int(i), int(j))
    return [find(i) for i in range(len(forms))]


def _nested(word_sets: list[set[str]]) -> bool:
    """Whether the names nest (each contains the shorter ones): one entity named ever more fully."""
    ordered = sorted(word_sets, key=len)
    return all(a <= b for a, b in itertools.pairwise(ordered))


def _is_first_part(a: str, b: str) -> bool:
    short, long = sorted((a, b), key=len)
    if len(short) < 3 or short == long or " " in short:
        return False
    head = re.split(r"['’\-\s]", long, maxsplit=1)[0]
    return head == short


def _tables(
    raw: pd.DataFrame, forms: Sequence[Form], cluster: list[int], party: Party | None, include_ooc: bool
) -> tuple[pd.DataFrame, pd.DataFrame]:
    by_key = {form.key: index for index, form in enumerate(forms)}
    members: dict[int, list[Form]] = {}
    for index, form in enumerate(forms):
        members.setdefault(cluster[index], []).append(form)
    characters = {normalize(c.name): c.name for c in party.characters} if party else {}
    entity_of: dict[int, tuple[str, str, str]] = {}
    used: set[str] = set()
    for root, group in members.items():
        votes = sum((f.votes for f in group), Counter())
        pinned = next((f.pinned for f in group if f.pinned), None)
        kind = PC if pinned else (votes.most_common(1)[0][0] if votes else None)
        if kind in (None, MECHANICS):
            continue
        if kind == PC and not pinned:
            kind = NPC  # only the party names player characters
        name = characters.get(pinned) if pinned else max(group, key=lambda f: sum(f.surfaces.values())).name
        entity_id = _entity_id(kind, name or group[0].name, used)
        entity_of[root] = (entity_id, name or group[0].name, kind)
    mentions = raw.assign(cluster=[cluster[by_key[k]] for k in raw["key"]])
    mentions = mentions[mentions["cluster"].isin(entity_of)]
    # A name only the proper-noun runs found must come up twice: once is too often a stray word.
    recognized = mentions.groupby("cluster")["label"].agg(lambda labels: (labels != PROPER_NOUN).any())
    counts = mentions.groupby("cluster").size()
    mentions = mentions[mentions["cluster"].map(recognized | (counts >= MIN_PROPER_NOUN_MENTIONS))]
    if not include_ooc:
        story = mentions.groupby("cluster")["ic_ooc"].agg(lambda labels: (labels != OOC).any())
        mentions = mentions[mentions["cluster"].map(story)]
    mentions = mentions.assign(
        entity_id=[entity_of[c][0] for c in mentions["cluster"]],
        name=[entity_of[c][1] for c in mentions["cluster"]],
    )
    mentions = mentions.sort_values(["time", "segment_id", "start_char"], kind="stable")
    rows = []
    for root, (entity_id, name, kind) in entity_of.items():
        own = mentions[mentions["cluster"] == root]
        if own.empty:
            continue
        aliases = sorted({s for f in members[root] for s in f.surfaces} - {name}, key=str.casefold)
        rows.append(
            {
                "entity_id": entity_id,
                "name": name,
                "type": kind,
                "aliases": tuple(aliases),
                "mentions": len(own),
                "segments": own["segment_id"].nunique(),
                "first_time": float(own["time"].min()),
                "last_time": float(own["time"].max()),
                "speakers": tuple(dict.fromkeys(s for s in own["speaker"] if isinstance(s, str))),
                "sources": tuple(sorted(set(own["source"]))),
            }
        )
    entities = pd.DataFrame(rows, columns=list(ENTITY_COLUMNS))
    entities = entities.sort_values(["type", "first_time", "name"], kind="stable", ignore_index=True)
    return entities, mentions[list(MENTION_COLUMNS)].reset_index(drop=True)


def _entity_id(kind: str, name: str, used: set[str]) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", name.casefold()).strip("-") or "entity"
    entity_id, number = f"{kind.lower()}:{slug}", 2
    while entity_id in used:
        entity_id, number = f"{kind.lower()}:{slug}-{number}", number + 1
    used.add(entity_id)
    return entity_id
