"""Reading the inbox ahead: one worker process reads submissions and renders receipts while the
consolidating process validates and merges.

python-calamine lets go of the GIL while it parses, but a third of reading a form (its cells made
Python objects, headers matched) and all of rendering a receipt hold it: a thread would not run
beside the merge. Anything wrong with the worker (it cannot start, it died) falls back to doing
the work in the calling process: the run is the same, only slower.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import sys
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

from .submission import Submission, read_for_consolidation, render_receipt, watch_parent

# Enough files are in flight to cover a validation batch, bounded so that memory stays flat
# however many files wait.
READ_AHEAD_MIN_FILES = 8  # fewer files: read here (starting a process costs more than it saves)
READ_AHEAD_FILES = 160
READ_AHEAD_BYTES = 8 << 20
# Receipts waiting for the worker; more are written here. The worker catches up while this
# process writes the master, so most of a run's receipts never cost this process their
# rendering; each waiting one holds its context (~100 KB for 200 rows): 25 MB at most.
WRITES_QUEUED = 256


def start_worker() -> Worker | None:
    """The worker process, started now; None when it cannot start (then files are read here)."""
    try:
        return Worker()
    except Exception:
        return None


class Worker:
    """One worker process ("spawn", as on Windows: a forked child would inherit the master's lock).

    Waits on its futures check that it lives: on Python 3.11, a pool whose process died while
    some of its futures were cancelled can leave the others unresolved for ever."""

    def __init__(self) -> None:
        self.pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"),
                                        initializer=watch_parent)
        with main_script_hidden():
            self.pid = self.pool.submit(os.getpid)  # starts the process; tells it apart later

    def alive(self) -> bool:
        if not self.pid.done():
            return True  # still starting
        if self.pid.cancelled() or self.pid.exception() is not None:
            return False
        return any(p.pid == self.pid.result() for p in multiprocessing.active_children())

    def result(self, future: Future) -> object:
        """``future.result()``; raises ``BrokenProcessPool`` when the process died first."""
        while True:
            try:
                return future.result(timeout=1.0)
            except TimeoutError:
                if not self.alive():
                    raise BrokenProcessPool("the reader process ended") from None

    def shutdown(self, wait: bool) -> None:
        # Pending futures are cancelled by the pool's own thread (no race with a broken pool).
        self.pool.shutdown(wait=wait, cancel_futures=True)


@contextlib.contextmanager
def main_script_hidden() -> Iterator[None]:
    """A spawned process runs the parent's ``__main__`` script again (all of it, unless guarded by
    ``if __name__ == "__main__"``); the reader needs only ``macros.submission``, so the script is
    hidden while the process starts: a caller's unguarded script must never run twice."""
    main = sys.modules.get("__main__")
    if main is None:
        yield
        return
    saved = {k: main.__dict__[k] for k in ("__spec__", "__file__") if k in main.__dict__}
    main.__spec__ = None
    main.__dict__.pop("__file__", None)
    try:
        yield
    finally:
        main.__dict__.pop("__spec__", None)
        main.__dict__.update(saved)


class ReadAhead:
    """The inbox's workbooks in order, read ahead by one worker process when there are many.

    When this process would wait for the worker, it reads the next file the worker has not
    started itself, so neither process idles (at start-up the worker is still importing). Anything
    wrong with the worker (it cannot start, it died) falls back to reading here, as with few files.
    """

    def __init__(self, paths: list[Path]):
        self.paths = paths
        self.position = 0  # the next file ``next`` returns
        self.assigned = 0  # files [0, assigned) are submitted to the worker or read already
        self.futures: dict[int, Future] = {}
        self.ready: dict[int, Submission | str] = {}
        self.sizes = [0] * len(paths)
        self.in_flight = 0  # bytes (on disk) of files assigned but not yet returned
        self.writes: dict[Future, tuple] = {}  # receipts the worker renders and writes → their arguments
        self.failed: dict[Path, Exception] = {}  # receipts not written (a full disk, the template failed...)
        self.worker = start_worker() if len(paths) >= READ_AHEAD_MIN_FILES else None
        self._top_up()

    def __enter__(self) -> ReadAhead:
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        if exc_type is not None:  # the run failed: its receipts confirm nothing (and must not delay the error)
            self.drop_writes()
        self.close()

    def close(self) -> None:
        """Wait for the worker's writes (any that failed are done here, and those failing again for
        an I/O reason go to ``failed``), then stop it."""
        try:
            for future, job in list(self.writes.items()):
                if not self._written(future):
                    try:
                        render_receipt(*job)  # here, where an error shows as it would
                    except Exception as exc:  # the master may be written already: the run goes on
                        self.failed[job[0]] = exc
        finally:
            self.writes.clear()
            if self.worker is not None:
                self.worker.shutdown(wait=True)
                self.worker = None
            self.futures.clear()

    def drop_writes(self) -> None:
        """Forget the receipts not yet written: the run was staged or failed, so there is nothing
        to confirm (the files stay in the inbox)."""
        for future in self.writes:
            future.cancel()  # False for one being written: it finishes, in the folder about to go
        self.writes.clear()

    def _written(self, future: Future) -> bool:
        if self.worker is not None:
            try:
                self.worker.result(future)
            except Exception:
                return False
            return True
        # Given up: the worker finished what it had started (or died), see ``_give_up``.
        return future.done() and not future.cancelled() and future.exception() is None

    def write(self, path: Path, templates: str | None, context: dict) -> None:
        """Render and write a receipt by the worker (rendering 200 rows is ~3 ms; creating a file
        is slow on some disks), while this process merges the next file."""
        if self.worker is not None and len(self.writes) >= WRITES_QUEUED:
            self.writes = {f: job for f, job in self.writes.items()
                           if not f.done() or f.cancelled() or f.exception()}
        if self.worker is None or len(self.writes) >= WRITES_QUEUED:
            render_receipt(path, templates, context)
            return
        try:
            job = (path, templates, context)
            self.writes[self.worker.pool.submit(render_receipt, *job)] = job
        except Exception:
            self._give_up()
            render_receipt(path, templates, context)

    def next(self, path: Path) -> Submission | str:
        """The next file's submission, or why it cannot be read (Chinese); ``path`` is that file."""
        i = self.position
        if i >= len(self.paths) or self.paths[i] != path:
            raise ValueError(f"files must be read in order: {path}")
        while i not in self.ready:
            future = self.futures.get(i)
            if future is None:  # not assigned yet (no worker) or handed back by a failed worker
                self.assigned = max(self.assigned, i + 1)
                self.ready[i] = read_for_consolidation(path)
            elif future.done() or not self._steal():
                self._collect(i)
        self.position += 1
        self.in_flight -= self.sizes[i]
        self._top_up()
        return self.ready.pop(i)

    def _top_up(self) -> None:
        while (self.worker is not None and self.assigned < len(self.paths)
               and self.assigned - self.position < READ_AHEAD_FILES
               and (self.in_flight < READ_AHEAD_BYTES or self.assigned == self.position)):
            j = self.assigned
            with contextlib.suppress(OSError):  # gone: reading it says so
                self.sizes[j] = self.paths[j].stat().st_size
            try:
                self.futures[j] = self.worker.pool.submit(read_for_consolidation, self.paths[j])
            except Exception:  # the pool cannot start or is broken: read here from now on
                self._give_up()
                return
            self.in_flight += self.sizes[j]
            self.assigned += 1

    def _steal(self) -> bool:
        """Read here the first file the worker has not started; False when it has started all."""
        for j, future in self.futures.items():  # in file order, as the worker takes them
            if future.cancel():  # False: started or done
                del self.futures[j]
                self.ready[j] = read_for_consolidation(self.paths[j])
                return True
        return False

    def _collect(self, i: int) -> None:
        future = self.futures.pop(i)
        try:
            self.ready[i] = self.worker.result(future)
        except Exception:  # the worker failed: read here (where a real error shows as it would)
            self._give_up()
            self.ready[i] = read_for_consolidation(self.paths[i])

    def _give_up(self) -> None:
        worker, self.worker = self.worker, None
        self.futures.clear()  # assigned files not yet returned are read here when reached
        if worker is not None:  # a live one finishes the task it is on: no write is half done
            worker.shutdown(wait=worker.alive())
