"""torch's thread count on the thread that runs a model (see :mod:`livereview.core.threads` for how many)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def torch_threads(threads: int) -> Iterator[None]:
    """Run the body with ``threads`` torch threads on the calling thread, restored afterwards.

    torch's thread count belongs to the thread that sets it (OpenMP), so the thread
    that runs the model must set it.
    """
    import torch

    previous = torch.get_num_threads()
    if threads != previous:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        if threads != previous:
            torch.set_num_threads(previous)
