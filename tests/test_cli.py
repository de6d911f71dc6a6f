"""The command line: a real run, and clear errors with a non-zero exit for bad input."""

from __future__ import annotations

import json
import subprocess
import sys
import wave

import pytest


def livereview_cli(*args: str, cwd=None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "livereview", *args], capture_output=True, text=True, timeout=600, cwd=cwd
    )


@pytest.mark.slow
def test_run_writes_a_session_and_says_where(tmp_path, sample) -> None:
    result = livereview_cli(
        "run", str(sample["audio"]), "--out", str(tmp_path), "--num-speakers", "2", "--threads", "1"
    )
    assert result.returncode == 0, result.stderr
    assert f"results in {tmp_path}/sample/" in result.stdout
    assert "100%" in result.stderr  # the progress bar
    assert (tmp_path / "sample" / "segments.jsonl").stat().st_size > 0
    metrics = json.loads((tmp_path / "sample" / "metrics.json").read_text())
    assert metrics["threads"] == {"budget": 1, "overlap": False, "transcribe": 1, "analyse": 1}


def test_missing_file(tmp_path) -> None:
    result = livereview_cli("run", str(tmp_path / "missing.flac"))
    assert result.returncode == 2
    assert "audio file not found" in result.stderr and "missing.flac" in result.stderr


def test_undecodable_file(tmp_path) -> None:
    path = tmp_path / "notes.mp3"
    path.write_text("not audio\n" * 100)
    result = livereview_cli("run", str(path), "--out", str(tmp_path))
    assert result.returncode == 2
    assert "cannot decode" in result.stderr


def test_empty_audio(tmp_path) -> None:
    path = tmp_path / "empty.wav"
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(16000)
    result = livereview_cli("run", str(path), "--out", str(tmp_path))
    assert result.returncode == 2
    assert "holds no audio" in result.stderr


@pytest.mark.parametrize(
    ("option", "message"),
    [
        (["--num-speakers", "0"], "num_speakers must be at least 1; got 0"),
        (["--min-speakers", "5", "--max-speakers", "2"], "min_speakers (5) must not exceed max_speakers (2)"),
        (["--chunk-length", "-3"], "--chunk-length must be positive; got -3.0"),
        (["--num-speakers", "two"], "expected a whole number or 'auto', got 'two'"),
        (["--device", "tpu"], "invalid choice: 'tpu'"),
        (["--party", "nowhere.yaml"], "party file not found: nowhere.yaml"),
        (["--threads", "0"], "--threads must be at least 1; got 0"),
    ],
)
def test_bad_options(tmp_path, sample, option, message) -> None:
    result = livereview_cli("run", str(sample["audio"]), "--out", str(tmp_path), *option)
    assert result.returncode == 2
    assert message in result.stderr
    assert not (tmp_path / "sample").exists()  # nothing written for a refused run
