"""Audio input: many containers, rates and channel counts; clear errors for bad input."""

from __future__ import annotations

import wave
from pathlib import Path

import av
import numpy as np
import pytest

from livereview.stages.audio import SAMPLE_RATE, AudioError, iter_audio, load_clip, probe


def _encode(source: Path, target: Path, codec: str, rate: int, layout: str) -> Path:
    """Re-encode ``source`` with PyAV into another container, rate and channel layout."""
    resampler = av.AudioResampler(format="s16p" if codec != "pcm_s16le" else "s16", layout=layout, rate=rate)
    with av.open(str(source)) as inp, av.open(str(target), "w") as out:
        stream = out.add_stream(codec, rate=rate, layout=layout)
        fmt = stream.codec_context.format.name if stream.codec_context.format else "s16"
        resampler = av.AudioResampler(format=fmt, layout=layout, rate=rate)
        for frame in inp.decode(audio=0):
            frame.pts = None
            for piece in resampler.resample(frame):
                for packet in stream.encode(piece):
                    out.mux(packet)
        for piece in resampler.resample(None):
            for packet in stream.encode(piece):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return target


@pytest.mark.parametrize(
    ("name", "codec", "rate", "layout"),
    [
        ("stereo-44k.wav", "pcm_s16le", 44_100, "stereo"),
        ("mono-8k.flac", "flac", 8_000, "mono"),
        ("stereo-48k.mp3", "libmp3lame", 48_000, "stereo"),
        ("mono-48k.ogg", "libopus", 48_000, "mono"),
        ("stereo-44k.m4a", "aac", 44_100, "stereo"),
        ("video-like.mkv", "aac", 48_000, "5.1"),
    ],
)
def test_decodes_any_container_rate_and_layout_to_16k_mono(tmp_path, sample, name, codec, rate, layout) -> None:
    path = _encode(sample["audio"], tmp_path / name, codec, rate, layout)
    info = probe(path)
    assert info.sample_rate == rate
    assert abs(info.duration - 30.0) < 0.2
    blocks = list(iter_audio(path, block_seconds=7.0))
    audio = np.concatenate(blocks)
    assert all(b.dtype == np.float32 and b.ndim == 1 for b in blocks)
    assert all(b.size == 7 * SAMPLE_RATE for b in blocks[:-1])
    assert abs(audio.size / SAMPLE_RATE - 30.0) < 0.2
    assert 0.01 < np.abs(audio).max() <= 1.0


def test_streaming_decode_matches_reference_samples(sample) -> None:
    audio = np.concatenate(list(iter_audio(sample["audio"], block_seconds=3.3)))
    whole = np.concatenate(list(iter_audio(sample["audio"], block_seconds=60)))
    np.testing.assert_array_equal(audio, whole)
    clip = load_clip(sample["audio"], 12.0, 14.5)
    assert clip.size == int(2.5 * SAMPLE_RATE)
    np.testing.assert_allclose(clip, whole[12 * SAMPLE_RATE : 12 * SAMPLE_RATE + clip.size], atol=1e-4)


def test_missing_file(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="audio file not found"):
        probe(tmp_path / "nope.wav")


def test_directory_is_refused(tmp_path) -> None:
    with pytest.raises(IsADirectoryError, match="expected an audio file"):
        probe(tmp_path)


def test_undecodable_file(tmp_path) -> None:
    path = tmp_path / "notes.wav"
    path.write_text("this is not audio at all\n" * 50)
    with pytest.raises(AudioError, match="cannot decode"):
        probe(path)


def test_empty_audio(tmp_path) -> None:
    path = tmp_path / "empty.wav"
    with wave.open(str(path), "wb") as out:  # a valid header and zero samples
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(16_000)
    with pytest.raises(AudioError, match="holds no audio"):
        probe(path)


def test_clip_range_must_not_be_empty(sample) -> None:
    with pytest.raises(ValueError, match=r"12\.000-9\.500 s is empty: start must come before end"):
        load_clip(sample["audio"], 12.0, 9.5)
