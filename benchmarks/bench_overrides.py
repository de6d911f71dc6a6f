"""Benchmark the override store and the merged view.

Run with ``python benchmarks/bench_overrides.py``. Prints, beside their targets:

* the time to build the merged view of 20,000 segments under 50,000 override
  records (median of several runs), with and without reading the store's values;
* the time to reopen the store from its index and from the log alone;
* durable append throughput (each batch fsync-ed), single overrides and batches of 100.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from livereview.core.segments import IC_OOC_LABELS, OVERRIDABLE_FIELDS, segment_id_for, segments_to_frame
from livereview.review.view import merged_view
from livereview.store.overrides import EditContext, OverrideStore

SEGMENTS = 20_000
OVERRIDES = 50_000
LOAD_BATCH = 1_000
VIEW_TARGET_MS = 100.0
SPEAKERS = ("Dana", "Alex", "Sam", "Riley")
SESSION_ID = "bench"


def segment_table(count: int) -> pd.DataFrame:
    """``count`` segments of 2.5 s, 50 per chunk, with speakers, labels and text."""
    rows = [
        {
            "session_id": SESSION_ID,
            "segment_id": segment_id_for(i // 50, i % 50),
            "chunk_id": i // 50,
            "start": i * 3.0,
            "end": i * 3.0 + 2.5,
            "text": f"utterance number {i} of the session",
            "speaker_id": SPEAKERS[i % len(SPEAKERS)],
            "ic_ooc": IC_OOC_LABELS[i % 2],
            "character_tag": "",
            "status": "classified",
        }
        for i in range(count)
    ]
    return segments_to_frame(rows)


def random_value(name: str, rng: np.random.Generator) -> Any:
    return {
        "speaker_id": lambda: SPEAKERS[rng.integers(len(SPEAKERS))],
        "character_tag": lambda: ("Mira", "Borin", "Kestrel")[rng.integers(3)],
        "ic_ooc": lambda: IC_OOC_LABELS[rng.integers(3)],
        "text": lambda: f"corrected text {rng.integers(1_000_000)}",
        "confidence_flag": lambda: bool(rng.integers(2)),
    }[name]()


def batch_frame(ids: list[str], rng: np.random.Generator) -> pd.DataFrame:
    """One row per segment, one random field filled per row."""
    columns: dict[str, list[Any]] = {name: [None] * len(ids) for name in OVERRIDABLE_FIELDS}
    for row in range(len(ids)):
        name = OVERRIDABLE_FIELDS[rng.integers(len(OVERRIDABLE_FIELDS))]
        columns[name][row] = random_value(name, rng)
    return pd.DataFrame({"segment_id": ids, **columns})


def median_ms(action: Callable[[], Any], runs: int = 7) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        action()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def fill_store(store: OverrideStore, segments: pd.DataFrame, rng: np.random.Generator) -> None:
    for _ in range(OVERRIDES // LOAD_BATCH):
        ids = rng.choice(segments.index.to_numpy(), LOAD_BATCH, replace=False).tolist()
        store.apply_batch(batch_frame(ids, rng), user="bench", confirm=True)


def throughput(store: OverrideStore, segments: pd.DataFrame, size: int, total: int) -> float:
    """Overrides per second appended durably in batches of ``size``."""
    rng = np.random.default_rng(size)
    frames = [
        batch_frame(rng.choice(segments.index.to_numpy(), size, replace=False).tolist(), rng)
        for _ in range(total // size)
    ]
    started = time.perf_counter()
    for frame in frames:
        store.apply_batch(frame, user="bench", confirm=True)
    return total / (time.perf_counter() - started)


def main() -> None:
    rng = np.random.default_rng(0)
    segments = segment_table(SEGMENTS)
    context = EditContext(segments, set(segments["chunk_id"]), set(SPEAKERS))
    with tempfile.TemporaryDirectory() as session_dir:
        store = OverrideStore(session_dir, SESSION_ID, lambda: context)
        started = time.perf_counter()
        fill_store(store, segments, rng)
        fill_s = time.perf_counter() - started
        values = store.current_values()
        cells = sum(len(fields) for fields in values.values())
        print(f"store: {OVERRIDES:,} override records on {SEGMENTS:,} segments")
        print(f"  written in {fill_s:.1f} s, batches of {LOAD_BATCH:,}; {cells:,} cells overridden")

        view_ms = median_ms(lambda: merged_view(segments, values))
        full_ms = median_ms(lambda: merged_view(segments, store.current_values()))
        base_ms = median_ms(lambda: merged_view(segments, values, show_base=True))
        print("merged view (median of 7)                target")
        print(f"  merged_view                 {view_ms:7.1f} ms   <= {VIEW_TARGET_MS:.0f} ms")
        print(f"  current_values + view       {full_ms:7.1f} ms   <= {VIEW_TARGET_MS:.0f} ms")
        print(f"  view with show_base         {base_ms:7.1f} ms   <= {VIEW_TARGET_MS:.0f} ms")

        store.close()
        index_ms = median_ms(lambda: OverrideStore(session_dir, SESSION_ID, lambda: context), 3)
        index = Path(session_dir) / "overrides" / "overrides_index.json"
        index.unlink()
        log_ms = median_ms(lambda: _reopen_without_index(session_dir, context, index), 3)
        print("reopen (median of 3)")
        print(f"  from the index              {index_ms:7.1f} ms")
        print(f"  from the log alone          {log_ms:7.1f} ms")

    with tempfile.TemporaryDirectory() as session_dir:
        store = OverrideStore(session_dir, SESSION_ID, lambda: context)
        single = throughput(store, segments, 1, 300)
        batched = throughput(store, segments, 100, 5_000)
        print("durable append throughput (fsync per batch)")
        print(f"  single overrides            {single:9,.0f} /s   target >= 100 /s")
        print(f"  batches of 100              {batched:9,.0f} /s   target >= 1,000 /s")


def _reopen_without_index(session_dir: str, context: EditContext, index: Path) -> None:
    index.unlink(missing_ok=True)
    OverrideStore(session_dir, SESSION_ID, lambda: context)


if __name__ == "__main__":
    main()
