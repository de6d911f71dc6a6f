"""Who each turn is: linking chunk speakers into session speakers, reclustering, naming, assigning.

Pure numpy and scipy over :class:`~livereview.core.turns.ChunkSpeakers` records: no
model runs here, so the store, the global pass and the reruns use these functions on
stored turns.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator

import numpy as np

from livereview.core.options import DiarizeOptions
from livereview.core.segments import Segment
from livereview.core.turns import ChunkSpeakers


def _normalize(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    return vectors / np.where(norms > 0, norms, 1.0)


def _inherit_short_turns(chunk: ChunkSpeakers, fallback: str | None) -> None:
    """Turns without an embedding take the speaker most of their local speaker's turns have."""
    usable = chunk.usable()
    for index, (_, _, label) in enumerate(chunk.turns):
        if usable[index]:
            continue
        siblings = [chunk.speakers[i] for i, turn in enumerate(chunk.turns) if turn[2] == label and usable[i]]
        chunk.speakers[index] = max(sorted(set(siblings)), key=siblings.count) if siblings else fallback or "SPEAKER_00"


def _fresh_names(taken: set[str]) -> Iterator[str]:
    """``SPEAKER_00``, ``SPEAKER_01``, ... skipping the names in ``taken``."""
    return (name for name in (f"SPEAKER_{n:02d}" for n in itertools.count()) if name not in taken)


class SpeakerRegistry:
    """The session's speakers, a running centroid each, grown turn by turn as chunks arrive.

    A turn unlike every known speaker starts a new one even past a given speaker count:
    forcing it onto the nearest known speaker mislabels the player who speaks first late
    (online DER of the demo's turns 0.218 forced, 0.107 free); a bounded run reclusters
    as soon as the links find more speakers than the bound.
    """

    def __init__(self, link_threshold: float) -> None:
        self.link_threshold = link_threshold
        self.names: list[str] = []
        self._sums: list[np.ndarray] = []

    def link(self, chunk: ChunkSpeakers) -> None:
        """Name the session speaker of every turn of ``chunk``, adding speakers as needed."""
        usable = chunk.usable()
        chunk.speakers = [""] * len(chunk.turns)
        for index in np.flatnonzero(usable):
            vector = _normalize(chunk.embeddings[index])
            weight = chunk.turns[index][1] - chunk.turns[index][0]
            similarity = _normalize(np.stack(self._sums)) @ vector if self._sums else np.zeros(0)
            best = int(np.argmax(similarity)) if similarity.size else -1
            if best < 0 or similarity[best] < self.link_threshold:
                self.names.append(next(_fresh_names(set(self.names))))
                self._sums.append(vector * weight)
                best = len(self.names) - 1
            else:
                self._sums[best] = self._sums[best] + vector * weight
            chunk.speakers[index] = self.names[best]
        _inherit_short_turns(chunk, self.names[0] if self.names else None)

    def adopt(self, chunks: list[ChunkSpeakers]) -> None:
        """Take the chunks' current labels (after a recluster) as the session's speakers.

        Each label's centroid is the duration-weighted sum of its turns' unit embeddings,
        as if its turns had been linked to it one by one.
        """
        sums: dict[str, np.ndarray] = {}
        for chunk in chunks:
            for index in np.flatnonzero(chunk.usable()):
                start, end, _ = chunk.turns[index]
                vector = _normalize(chunk.embeddings[index]) * (end - start)
                name = chunk.speakers[index]
                sums[name] = sums[name] + vector if name in sums else vector
        self.names = sorted(sums)
        self._sums = [sums[name] for name in self.names]


#: Without a speaker count, a cluster holding less than this share of the speech...
SMALL_CLUSTER_SHARE = 0.1
#: ...joins the larger cluster its centroid is most similar to, when at least this similar (cosine).
SMALL_CLUSTER_MERGE_SIMILARITY = 0.5


def _centroids(weighted: np.ndarray, clusters: np.ndarray, members: Iterable[int]) -> np.ndarray:
    """The unit centroid of each cluster of ``members``: the sum of its turns' ``weighted`` vectors.

    ``weighted``: unit embeddings times the turns' seconds, so longer turns count more.
    """
    return _normalize(np.stack([weighted[clusters == cluster].sum(axis=0) for cluster in members]))


def _merge_small_clusters(vectors: np.ndarray, durations: np.ndarray, clusters: np.ndarray) -> np.ndarray:
    """Clusters with little speech that sound like a larger one merged into it; a small one unlike all stays.

    Threshold clustering splits a speaker whose voice changes (laughing, an NPC voice,
    a far seat) into a large cluster and small ones: without a count it found 15
    speakers for the demo's 4. Merged by speech share and similarity (tuned on ami-dev,
    the demo and the pyannote sample, steady for shares 0.1-0.12 and similarities
    0.45-0.6): DER without a count 0.343 -> 0.320 on ami-dev, 0.176 -> 0.068 on the demo
    (4 speakers found), 0.199 -> 0.071 on the sample (2). A quiet player unlike everyone
    else keeps a cluster of their own.
    """
    ids = sorted(set(clusters.tolist()))
    speech = {cluster: durations[clusters == cluster].sum() for cluster in ids}
    large = [cluster for cluster in ids if speech[cluster] >= SMALL_CLUSTER_SHARE * durations.sum()]
    if not large or len(large) == len(ids):
        return clusters

    weighted = vectors * durations[:, None]
    small = [cluster for cluster in ids if cluster not in large]
    similarity = _centroids(weighted, clusters, small) @ _centroids(weighted, clusters, large).T
    merged = clusters.copy()
    for row, cluster in enumerate(small):
        if similarity[row].max() >= SMALL_CLUSTER_MERGE_SIMILARITY:
            merged[clusters == cluster] = large[int(np.argmax(similarity[row]))]
    return merged


#: The global pass clusters at most this many turns, evenly spread over the session; the
#: others join the cluster whose centroid is nearest. Clustering is quadratic in the turns
#: it takes (about 1,650 an hour at a table), so this keeps the pass linear in the length
#: of the session and its memory bounded (about 35 minutes of turns clustered whole).
MAX_CLUSTERED_TURNS = 1000


def _cluster(vectors: np.ndarray, durations: np.ndarray, options: DiarizeOptions) -> np.ndarray:
    """Cluster ids of unit ``vectors`` (turns of ``durations`` s) under the options' speaker count or bounds."""
    from scipy.cluster.hierarchy import fcluster, linkage

    if options.num_speakers:
        return fcluster(linkage(vectors, method="ward"), t=options.num_speakers, criterion="maxclust")
    clusters = fcluster(
        linkage(vectors, method="average", metric="cosine"), t=1.0 - options.link_threshold, criterion="distance"
    )
    clusters = _merge_small_clusters(vectors, durations, clusters)
    count = len(set(clusters))
    low, high = options.min_speakers or 1, options.max_speakers or count
    if not low <= count <= high:
        clusters = fcluster(linkage(vectors, method="ward"), t=min(max(count, low), high), criterion="maxclust")
    return clusters


def _cluster_bounded(vectors: np.ndarray, durations: np.ndarray, options: DiarizeOptions) -> np.ndarray:
    """:func:`_cluster` on at most :data:`MAX_CLUSTERED_TURNS` evenly spread turns, the rest by nearest centroid."""
    if len(vectors) <= MAX_CLUSTERED_TURNS:
        return _cluster(vectors, durations, options)
    chosen = np.unique(np.linspace(0, len(vectors) - 1, MAX_CLUSTERED_TURNS).round().astype(int))
    found = _cluster(vectors[chosen], durations[chosen], options)
    ids = np.unique(found)
    centroids = _centroids(vectors[chosen] * durations[chosen, None], found, ids)
    clusters = ids[np.argmax(vectors @ centroids.T, axis=1)]
    clusters[chosen] = found
    return clusters


def recluster(chunks: list[ChunkSpeakers], options: DiarizeOptions) -> dict[int, list[str]]:
    """Global pass: cluster every speaker turn of the session together.

    Ward linkage on unit embeddings when the number of speakers is known (or bounded),
    average cosine linkage with the link threshold otherwise, small clusters that sound
    like a larger one then joining it (:func:`_merge_small_clusters`); past
    :data:`MAX_CLUSTERED_TURNS` turns, a spread of them is clustered and the rest join the
    nearest cluster. A cluster keeps the name of the current speaker it shares the most
    speech with, even when that leaves a gap in the numbers (``SPEAKER_00`` and
    ``SPEAKER_02`` for two speakers): renaming a voice the review already shows would cost
    more (online DER of the demo's turns 0.107 kept, 0.161 renamed to close the gaps); new
    clusters take free names.

    Returns
    -------
    speakers : dict
        chunk id -> session speaker of each of its turns.
    """
    from scipy.optimize import linear_sum_assignment

    items = [(chunk, index) for chunk in chunks for index in np.flatnonzero(chunk.usable())]
    if len(items) < 2:
        return {chunk.chunk_id: list(chunk.speakers) for chunk in chunks}
    vectors = _normalize(np.stack([chunk.embeddings[index] for chunk, index in items]))
    durations = np.array([chunk.turns[index][1] - chunk.turns[index][0] for chunk, index in items])
    clusters = _cluster_bounded(vectors, durations, options)
    current = [chunk.speakers[index] for chunk, index in items]
    old_names, cluster_ids = sorted(set(current)), sorted(set(clusters))
    overlap = np.zeros((len(cluster_ids), len(old_names)))
    for cluster, name, duration in zip(clusters, current, durations, strict=True):
        overlap[cluster_ids.index(cluster), old_names.index(name)] += duration
    rows, cols = linear_sum_assignment(-overlap)
    names = {cluster_ids[r]: old_names[c] for r, c in zip(rows, cols, strict=True)}
    fresh = _fresh_names(set(names.values()))
    names |= {cluster: next(fresh) for cluster in cluster_ids if cluster not in names}
    relabelled = {
        chunk.chunk_id: ChunkSpeakers(chunk.chunk_id, chunk.turns, chunk.embeddings, list(chunk.speakers))
        for chunk in chunks
    }
    for (chunk, index), cluster in zip(items, clusters, strict=True):
        relabelled[chunk.chunk_id].speakers[index] = names[cluster]
    for chunk in relabelled.values():
        _inherit_short_turns(chunk, None)
    return {chunk_id: chunk.speakers for chunk_id, chunk in relabelled.items()}


def shared_speech(
    turns: list[tuple[float, float, str]], others: list[tuple[float, float, str]]
) -> dict[str, dict[str, float]]:
    """Seconds each label of ``turns`` shares with each label of ``others``."""
    shared: dict[str, dict[str, float]] = {label: {} for _, _, label in turns}
    for start, end, label in turns:
        for other_start, other_end, other in others:
            seconds = min(end, other_end) - max(start, other_start)
            if seconds > 0:
                shared[label][other] = shared[label].get(other, 0.0) + seconds
    return shared


def name_speakers(
    turns: list[tuple[float, float, str]],
    previous: list[tuple[float, float, str]],
    anchors: list[tuple[float, float, str]],
    taken: set[str],
) -> tuple[dict[str, str], dict[str, str]]:
    """Name the speakers of a new diarization of a span, keeping what was known about it.

    Parameters
    ----------
    turns : list of (start, end, label)
        The new diarization, with its own labels.
    previous : list of (start, end, speaker)
        The span's earlier turns, with session speakers.
    anchors : list of (start, end, speaker)
        Spans an operator said who spoke (speaker corrections).
    taken : set of str
        Every speaker name in use in the session (new names avoid them).

    Returns
    -------
    names : dict
        New label -> speaker. A label holding anchored speech takes the anchor's speaker
        (most anchored seconds); the others take the earlier speaker they share the most
        speech with (one label each, by duration), else a new ``SPEAKER_NN``.
    inherited : dict
        New label -> the earlier speaker it shares the most speech with (for carrying a
        speaker mapping over to new names).
    """
    from scipy.optimize import linear_sum_assignment

    by_anchor, by_previous = shared_speech(turns, anchors), shared_speech(turns, previous)
    labels = sorted(by_previous)
    names = {label: max(sorted(by_anchor[label]), key=by_anchor[label].get) for label in labels if by_anchor[label]}
    free = [label for label in labels if label not in names]
    olds = sorted({speaker for _, _, speaker in previous} - set(names.values()))
    if free and olds:
        overlap = np.array([[by_previous[label].get(old, 0.0) for old in olds] for label in free])
        for row, col in zip(*linear_sum_assignment(-overlap), strict=True):
            if overlap[row, col] > 0:
                names[free[row]] = olds[col]
    used = set(taken) | set(names.values())
    fresh = (f"SPEAKER_{n:02d}" for n in range(10_000) if f"SPEAKER_{n:02d}" not in used)
    names |= {label: next(fresh) for label in labels if label not in names}
    inherited = {
        label: max(sorted(by_previous[label]), key=by_previous[label].get) for label in labels if by_previous[label]
    }
    return names, inherited


def carry_speaker_map(
    mapping: dict[str, str], names: dict[str, str], inherited: dict[str, str], anchored: set[str]
) -> dict[str, str]:
    """The speaker mapping after :func:`name_speakers`: a new name takes the player of the
    earlier speaker it shares the most speech with (operator-given names need none)."""
    carried = dict(mapping)
    for label, name in names.items():
        earlier = inherited.get(label)
        if name not in carried and name not in anchored and earlier in mapping:
            carried[name] = mapping[earlier]
    return carried


def assign_speakers(segments: list[Segment], turns: list[tuple[float, float, str]], model_id: str) -> None:
    """Give each segment the speaker who covers most of its words, in place.

    ``speaker_confidence`` is the share of the segment's word time that speaker covers.
    A segment no turn touches takes the nearest turn's speaker (within 2 s) with
    confidence 0, and stays without speaker otherwise.
    """
    for segment in segments:
        spans = [(w.start, w.end) for w in segment.words] or [(segment.start, segment.end)]
        total = sum(max(end - start, 1e-3) for start, end in spans)
        covered: dict[str, float] = {}
        for start, end in spans:
            for turn_start, turn_end, speaker in turns:
                shared = min(end, turn_end) - max(start, turn_start)
                if shared > 0:
                    covered[speaker] = covered.get(speaker, 0.0) + shared
        if covered:
            speaker = max(sorted(covered), key=covered.__getitem__)
            segment.speaker_id, segment.speaker_confidence = speaker, min(covered[speaker] / total, 1.0)
        else:
            distance: dict[str, float] = {}
            for turn_start, turn_end, speaker in turns:
                gap = max(turn_start - segment.end, segment.start - turn_end, 0.0)
                distance[speaker] = min(gap, distance.get(speaker, gap))
            nearest = min(distance, key=distance.__getitem__, default=None)
            if nearest is not None and distance[nearest] <= 2.0:
                segment.speaker_id, segment.speaker_confidence = nearest, 0.0
        segment.diarization_model = model_id
