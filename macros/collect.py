"""The cycle collector, run seldom while a large job builds millions of objects."""

from __future__ import annotations

import contextlib
import gc
import threading
from collections.abc import Iterator

_lock = threading.Lock()
_depth = 0  # runs inside collect_seldom now (threads of a server included)
_saved: tuple[tuple[int, ...], bool] = ((700, 10, 10), False)


@contextlib.contextmanager
def collect_seldom() -> Iterator[None]:
    """Run the cycle collector seldom, and never again over what lived before (gc.freeze).

    A consolidation allocates ~10 objects per row and frees few, and a large write builds a
    tuple per row: collecting every 700 allocations over the growing heap took a tenth of the
    run (0.3 s of a 60k-row write). Nested or overlapping uses (threads) leave it to the
    outermost: the first in sets it, the last out restores it."""
    global _depth, _saved
    with _lock:
        if _depth == 0:
            ours = gc.get_freeze_count() == 0  # a caller that froze objects itself keeps them frozen
            _saved = (gc.get_threshold(), ours)
            if ours:
                gc.freeze()
            gc.set_threshold(max(_saved[0][0], 10_000), *_saved[0][1:])
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0:
                threshold, ours = _saved
                gc.set_threshold(*threshold)
                if ours:
                    gc.unfreeze()
