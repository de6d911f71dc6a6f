"""The demo recording repeated into long sessions for the benchmarks, built once into ``benchmarks/.cache/``."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np

from livereview.demo import demo_audio_path

#: Where benchmarks keep what they build (recordings, processed sessions); delete it to build again.
CACHE = Path(__file__).resolve().parent / ".cache"
_BLOCK = 1 << 16


def repeated_demo(times: int, *, seconds: float | None = None, path: Path | None = None) -> Path:
    """The demo recording ``times`` over, cut to ``seconds`` when given, as FLAC (decoded and encoded with PyAV).

    Kept at ``path`` (default ``benchmarks/.cache/demo-x<times>.flac``) and reused when it is there.
    """
    path = path or CACHE / f"demo-x{times}.flac"
    if path.is_file():
        return path
    with av.open(str(demo_audio_path())) as source:
        stream = source.streams.audio[0]
        rate, layout = stream.rate, stream.layout.name
        samples = np.concatenate([frame.to_ndarray() for frame in source.decode(stream)], axis=1)
    whole = np.tile(samples, (1, times))
    if seconds is not None:
        whole = whole[:, : int(seconds * rate)]
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial.flac")
    with av.open(str(partial), "w", format="flac") as output:
        out = output.add_stream("flac", rate=rate, layout=layout)
        for start in range(0, whole.shape[1], _BLOCK):
            frame = av.AudioFrame.from_ndarray(
                np.ascontiguousarray(whole[:, start : start + _BLOCK]),
                format=out.codec_context.format.name,
                layout=layout,
            )
            frame.sample_rate = rate
            for packet in out.encode(frame):
                output.mux(packet)
        for packet in out.encode(None):
            output.mux(packet)
    partial.replace(path)
    return path
