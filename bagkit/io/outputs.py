"""Writing output files safely: never over an input, an existing file only when asked, atomically.

    target = checked_output("predictions.csv", inputs=[cohort_csv], force=False)
    with atomic_output(target) as tmp:      # a temporary file beside the target, same suffix
        frame.to_csv(tmp, index=False)      # replaces the target only if this succeeds
"""
from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Iterable, Iterator

from bagkit.errors import OutputExistsError


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def checked_output(path, inputs: Iterable = (), force: bool = False, what: str = "output") -> Path:
    """``path`` as a Path, after refusing an input file, a folder, or an existing file without ``force``."""
    out = Path(path)
    for given in inputs:
        if given is not None and _same_file(out, Path(given)):
            raise OutputExistsError(f"{out}: the {what} would overwrite the input {given}; choose another path.")
    if out.is_dir():
        raise OutputExistsError(f"{out}: is a folder; the {what} must be a file path.")
    if out.exists() and not force:
        raise OutputExistsError(f"{out} exists; choose another path or pass --force (force=True) to replace it.")
    return out


@contextlib.contextmanager
def atomic_output(path) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` (same suffixes, so writers that go by them work);
    on success it replaces ``path`` in one step, on failure it is removed and ``path`` is untouched."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    suffixes = "".join(path.suffixes)
    stem = path.name[: len(path.name) - len(suffixes)] if suffixes else path.name
    tmp = path.with_name(f".{stem}.tmp{os.getpid()}{suffixes}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


__all__ = ["checked_output", "atomic_output"]
