"""Run a function in a forked child process while this one goes on; collect its value later.

``analyze`` uses it for the sections that call R (matching): R's start (~0.8 s with rpy2) and
MatchIt run on the second core while Table 1, the outcomes and the regressions run here. The
child's value comes back pickled through a temporary file, with the warnings it raised (to be
raised again here, in order). Nothing is forked where fork is unavailable, one core is all
there is, R already runs in this process, or ``BAGKIT_NO_FORK`` is set; then, and whenever the
child fails for any reason of its own, the caller runs the function here as before.
"""
from __future__ import annotations

import os
import pickle
import signal
import sys
import tempfile
import warnings
from typing import Any, Callable


def can_fork() -> bool:
    """Whether a second process can help: fork exists, more than one core, not switched off."""
    if not hasattr(os, "fork") or os.environ.get("BAGKIT_NO_FORK"):
        return False
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return cores > 1


def fork() -> int:
    """``os.fork()`` without Python 3.12's DeprecationWarning about a multi-threaded process (the
    threads are BLAS's, which register fork handlers; the child only computes and exits). The
    child dies with its parent (see :func:`_die_with_parent`)."""
    parent = os.getpid()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:
        _die_with_parent(parent)
    return pid


def _die_with_parent(parent: int) -> None:
    """On Linux, have the kernel kill this child when its parent dies, ``kill -9`` included, so
    that no child goes on matching or writing for a run that is gone (PR_SET_PDEATHSIG)."""
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # 1: PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # the parent died before the request took effect
        os._exit(1)


class Child:
    """A forked child computing ``function()``; :meth:`result` waits and returns
    ``(value, warnings)`` or raises :class:`ChildFailed`."""

    def __init__(self, function: Callable[[], Any]):
        handle, self._path = tempfile.mkstemp(prefix="bagkit-child-", suffix=".pickle")
        os.close(handle)
        self._status: int | None = None  # the wait status, once reaped by running()
        sys.stdout.flush(), sys.stderr.flush()
        self._pid = fork()
        if self._pid == 0:
            _child_main(function, self._path)  # never returns

    def running(self) -> bool:
        """Whether the child is still computing (never waits)."""
        if self._pid is None or self._status is not None:
            return False
        try:
            pid, status = os.waitpid(self._pid, os.WNOHANG)
        except ChildProcessError:
            return False
        if pid == 0:
            return True
        self._status = status
        return False

    def result(self) -> tuple[Any, list[tuple[type, str]]]:
        try:
            status = self._status if self._status is not None else os.waitpid(self._pid, 0)[1]
            self._pid = None
            if os.waitstatus_to_exitcode(status) != 0:
                raise ChildFailed(f"exit status {os.waitstatus_to_exitcode(status)}")
            with open(self._path, "rb") as handle:
                kind, value, caught = pickle.load(handle)
        except (OSError, EOFError, pickle.UnpicklingError) as error:
            raise ChildFailed(str(error)) from None
        finally:
            self.close()
        if kind != "value":
            raise ChildFailed(value)
        return value, caught

    def close(self) -> None:
        """Stop the child if it still runs (an error or interrupt here) and remove its file."""
        if self._pid is not None and self._status is None:
            try:
                os.kill(self._pid, signal.SIGKILL)
                os.waitpid(self._pid, 0)
            except (ProcessLookupError, ChildProcessError):
                pass
        self._pid = None
        try:
            os.unlink(self._path)
        except FileNotFoundError:
            pass


class ChildFailed(Exception):
    """The child gave no value (crashed, killed, raised something it could not send back)."""


def _child_main(function: Callable[[], Any], path: str) -> None:
    status = 1
    try:
        signal.signal(signal.SIGINT, signal.SIG_DFL)  # an interrupt ends the child; the parent cleans up
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                payload = ("value", function(), None)
            except BaseException as error:  # noqa: BLE001 - reported to the parent, which reruns
                payload = ("error", f"{type(error).__name__}: {error}", None)
        payload = (payload[0], payload[1], [(w.category, str(w.message)) for w in caught])
        try:
            data = pickle.dumps(payload)
        except Exception as error:  # noqa: BLE001
            data = pickle.dumps(("error", f"cannot send the result back ({error})", []))
        with open(path, "wb") as handle:
            handle.write(data)
        status = 0
    finally:
        os._exit(status)  # no exit handlers of the parent's (R's, pytest's) run here


class Tokens:
    """The numbers 0 … n−1, each handed out once, to whichever process asks first: a pipe made
    before a fork holds one byte per number, and reading one byte is atomic. Two processes that
    take work this way share it by speed, not by a split fixed in advance."""

    LIMIT = 256  # one byte each

    def __init__(self, n: int):
        if not 0 <= n <= self.LIMIT:
            raise ValueError(f"Tokens holds 0 to {self.LIMIT} numbers, not {n}")
        self._read, write = os.pipe()
        try:
            os.write(write, bytes(range(n)))  # far below a pipe's buffer: never blocks
        finally:
            os.close(write)  # when every number is taken, a read finds the end

    def take(self) -> int | None:
        """The next number, or None when all are taken (or the tokens are closed)."""
        if self._read is None:
            return None
        data = os.read(self._read, 1)
        return data[0] if data else None

    def close(self) -> None:
        if self._read is not None:
            os.close(self._read)
            self._read = None
