"""Writing output files safely: never over an input, an existing file only when asked, atomically.

    target = checked_output("predictions.csv", inputs=[cohort_csv], force=False)
    with atomic_output(target) as tmp:      # a temporary file beside the target, same suffix
        frame.to_csv(tmp, index=False)      # replaces the target only if this succeeds

Output *folders* (the report's) go through :func:`output_folder`:

    with output_folder("bagkit-report", inputs=[cohort_csv], force=True) as staging:
        (staging / "results.csv").write_text(...)   # everything is written into a hidden sibling
    # here the folder was swapped into place in one rename; on any failure nothing changed

The rules it keeps (README, "Your files"):

- bagkit marks every folder it writes with a file ``.bagkit-output`` listing each file it wrote
  and its SHA-256. ``force`` replaces an existing folder only when it is empty or holds exactly
  what its marker lists, unchanged; a folder with anything else in it (a file the user added, a
  file of bagkit's the user edited, a folder without a marker) is refused, naming what is there.
  Nothing of the user's is moved, kept aside or deleted: the user moves it, or picks another folder.
- Never the current folder or one of its ancestors, never a folder that holds an input, never
  through a symbolic link.
- A run writes into ``.NAME.bagkit-new.XXXXXXXX`` beside the folder and, when replacing, parks
  the old folder in ``.NAME.bagkit-old.XXXXXXXX`` for the instant of the swap (interrupts held
  back meanwhile). Each such folder holds ``.bagkit-staging`` (process id and host). A later run
  for the same folder removes those of processes that no longer run on this host, and moves a
  parked previous output back into place if a killed run left none there.
"""
from __future__ import annotations

import contextlib
import datetime
import json
import os
import re
import shutil
import signal
import socket
import tempfile
import threading
from pathlib import Path
from typing import Iterable, Iterator

from bagkit.errors import OutputError, OutputExistsError
from bagkit.io.hashing import file_hash

OUTPUT_MARKER = ".bagkit-output"
STAGING_MARKER = ".bagkit-staging"
MARKER_FORMAT = "bagkit-output/1"
_STAGING_NAME = re.compile(r"^\.(?P<name>.+)\.bagkit-(?P<kind>new|old)\.[A-Za-z0-9_]{8}$")


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
    _check_creatable(out, what)
    return out


def _check_creatable(out: Path, what: str) -> None:
    """Refuse, with a message, a path below a file or in a folder bagkit may not write in."""
    ancestor = out.resolve().parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise OutputError(f"cannot create the {what} {out}: {ancestor} is a file, not a folder.")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise OutputError(f"cannot create the {what} {out}: no permission to write in {ancestor}.")


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


# --------------------------------------------------------------------------- output folders
def _listing(paths: list[str], limit: int = 6) -> str:
    more = f" and {len(paths) - limit} more" if len(paths) > limit else ""
    return ", ".join(paths[:limit]) + more


def read_marker(folder) -> dict | None:
    """The ``.bagkit-output`` record of ``folder`` (None when there is none or it is unreadable)."""
    marker = Path(folder) / OUTPUT_MARKER
    try:
        record = json.loads(marker.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or record.get("format") != MARKER_FORMAT \
            or not isinstance(record.get("files"), dict):
        return None
    return record


def not_written_by_bagkit(folder) -> list[str]:
    """What in ``folder`` bagkit did not write (as its marker records it), as relative paths
    (folders end in ``/`` and are not descended into); a file whose content changed since is
    listed with "(changed since bagkit wrote it)". Without a marker: everything in it, top level."""
    folder = Path(folder)
    record = read_marker(folder)
    if record is None:
        return sorted(p.name + ("/" if p.is_dir() and not p.is_symlink() else "") for p in folder.iterdir())
    files, folders = record["files"], set(record.get("folders", []))
    foreign = []
    for root, subfolders, names in os.walk(folder):
        here = Path(root)
        for name in sorted(subfolders):
            relative = (here / name).relative_to(folder).as_posix()
            if (here / name).is_symlink() or relative not in folders:
                foreign.append(relative + ("" if (here / name).is_symlink() else "/"))
        subfolders[:] = sorted(n for n in subfolders if (here / n).relative_to(folder).as_posix() in folders
                               and not (here / n).is_symlink())
        for name in sorted(names):
            entry = here / name
            relative = entry.relative_to(folder).as_posix()
            if relative == OUTPUT_MARKER:
                continue
            if entry.is_symlink() or relative not in files:
                foreign.append(relative)
                continue
            expected = files[relative].get("sha256") if isinstance(files[relative], dict) else None
            try:
                same = expected is not None and file_hash(entry) == expected
            except OSError:
                same = False
            if not same:
                foreign.append(f"{relative} (changed since bagkit wrote it)")
    return sorted(foreign)


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def check_output_folder(out, inputs: Iterable = (), force: bool = False, what: str = "output folder") -> Path:
    """``out`` as a Path after every refusal :func:`output_folder` makes, without writing anything:
    call it before long work so a refusal comes first."""
    out = Path(out)
    resolved = out.resolve()
    cwd = Path.cwd().resolve()
    if _inside(cwd, resolved):
        where = "the current folder" if resolved == cwd else f"a folder that holds the current folder ({cwd})"
        raise OutputExistsError(f"{out}: the {what} would be {where}; bagkit never replaces it. "
                                f"Give a new folder, e.g. -o bagkit-report.")
    held = [Path(p) for p in inputs if p is not None]
    inside = [p for p in held if _inside(p.resolve(), resolved)]
    if inside:
        raise OutputExistsError(f"refusing to replace {out}: it holds the input {inside[0]}; "
                                f"give another {what}.")
    if out.is_symlink():
        raise OutputExistsError(f"{out} is a symbolic link; give the folder it points to, or another {what}.")
    if out.exists():
        if not out.is_dir():
            raise OutputExistsError(f"{out} exists and is not a folder; refusing to replace it with the "
                                    f"{what}. Give another path with -o.")
        if not force:
            raise OutputExistsError(f"{what} {out} already exists; choose another with -o, or replace it "
                                    f"with --force (only a folder bagkit wrote is replaced).")
        foreign = not_written_by_bagkit(out)
        if foreign:
            marked = read_marker(out) is not None
            raise OutputExistsError(
                f"refusing to replace {out}: it holds {len(foreign)} thing(s) bagkit did not write "
                f"({_listing(foreign)})" + ("" if marked else ", and no .bagkit-output marker of a bagkit report")
                + ". --force replaces only a folder bagkit wrote; move those away or choose another "
                  "folder with -o.")
        return out
    _check_creatable(out, what)
    return out


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True


def _owner(folder: Path) -> dict | None:
    try:
        record = json.loads((folder / STAGING_MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) and isinstance(record.get("pid"), int) else None


def clean_stale_staging(out) -> list[str]:
    """Remove what killed runs left beside ``out``: bagkit's own staging folders (by name and
    ``.bagkit-staging`` marker) of processes no longer running on this host. A parked previous
    output is moved back when ``out`` is missing. Returns one sentence per thing done."""
    out = Path(out)
    parent = out.parent if str(out.parent) else Path(".")
    done: list[str] = []
    try:
        candidates = sorted(parent.iterdir())
    except OSError:
        return done
    legacy = re.compile(rf"^\.{re.escape(out.name)}\.(old\.)?[a-z0-9_]{{8}}$")
    for folder in candidates:
        if legacy.match(folder.name) and folder.is_dir():
            done.append(f"{parent / folder.name}: left alone; it looks like the staging folder of an "
                        f"interrupted run of an older bagkit (without a .bagkit-staging marker) — delete "
                        f"it yourself if it is")
            continue
        match = _STAGING_NAME.match(folder.name)
        if not match or match["name"] != out.name or folder.is_symlink() or not folder.is_dir():
            continue
        owner = _owner(folder)
        if owner is None or owner.get("host") != socket.gethostname() or _alive(owner["pid"]):
            continue
        parked = folder / out.name
        if match["kind"] == "old" and parked.is_dir() and not out.exists() and read_marker(parked) is not None:
            os.rename(parked, out)
            done.append(f"{out}: put back the previous output that an interrupted run (process "
                        f"{owner['pid']}) had set aside in {folder.name}")
        shutil.rmtree(folder, ignore_errors=True)
        done.append(f"{parent / folder.name}: removed the staging folder of an interrupted run "
                    f"(process {owner['pid']})")
    return done


def _new_staging(parent: Path, name: str, kind: str) -> Path:
    folder = Path(tempfile.mkdtemp(prefix=f".{name}.bagkit-{kind}.", dir=parent))
    (folder / STAGING_MARKER).write_text(json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                                                     "started": _now()}), encoding="utf-8")
    return folder


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_marker(folder, written_by: str = "bagkit") -> Path:
    """Record every file and folder under ``folder`` (with SHA-256 and size) in its marker."""
    folder = Path(folder)
    files, folders = {}, []
    for entry in sorted(folder.rglob("*")):
        relative = entry.relative_to(folder).as_posix()
        if relative in (OUTPUT_MARKER, STAGING_MARKER):
            continue
        if entry.is_dir():
            folders.append(relative)
        else:
            files[relative] = {"sha256": file_hash(entry), "bytes": entry.stat().st_size}
    record = {"format": MARKER_FORMAT, "written_by": written_by, "written_at": _now(),
              "note": "bagkit wrote this folder; `--force` replaces it only while it holds exactly "
                      "these files, unchanged.",
              "folders": folders, "files": files}
    marker = folder / OUTPUT_MARKER
    marker.write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    return marker


class _SignalsHeld:
    """Hold SIGINT/SIGTERM back for a few renames (main thread only); re-deliver them after."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __enter__(self):
        self.received: list[int] = []
        self.previous = {}
        if threading.current_thread() is threading.main_thread():
            for number in self.SIGNALS:
                self.previous[number] = signal.signal(number, lambda n, frame: self.received.append(n))
        return self

    def __exit__(self, *exc):
        for number, handler in self.previous.items():
            signal.signal(number, signal.SIG_DFL if handler is None else handler)
        for number in self.received:
            signal.raise_signal(number)
        return False


@contextlib.contextmanager
def output_folder(out, inputs: Iterable = (), force: bool = False, written_by: str = "bagkit",
                  notes: list | None = None) -> Iterator[Path]:
    """Yield an empty staging folder beside ``out``; when the block succeeds, mark it (see
    :func:`write_marker`) and swap it into place as ``out``. On any failure (an interrupt too)
    the staging folder is removed and ``out`` is as it was. What stale staging of killed runs
    was cleaned is appended to ``notes``."""
    out = Path(out)
    inputs = list(inputs)
    cleaned = clean_stale_staging(out)  # only bagkit's own leftovers; a parked output is put back first
    if notes is not None:
        notes.extend(cleaned)
    out = check_output_folder(out, inputs, force)
    parent = out.parent if str(out.parent) else Path(".")
    try:
        parent.mkdir(parents=True, exist_ok=True)
        staging = _new_staging(parent, out.name, "new")
    except OSError as error:
        raise OutputError(f"cannot create the output folder {out}: {error.strerror or error}") from None
    try:
        yield staging
        os.chmod(staging, 0o777 & ~_umask())
        write_marker(staging, written_by)
        (staging / STAGING_MARKER).unlink()
        with _SignalsHeld():
            if out.exists() or out.is_symlink():
                check_output_folder(out, inputs, force)  # nothing slipped in while we worked
                trash = _new_staging(parent, out.name, "old")
                os.rename(out, trash / out.name)
                try:
                    os.rename(staging, out)
                except OSError:
                    os.rename(trash / out.name, out)
                    raise
                shutil.rmtree(trash, ignore_errors=True)
            else:
                os.rename(staging, out)
    except OSError as error:
        shutil.rmtree(staging, ignore_errors=True)
        if isinstance(error, OutputError):
            raise
        where = f" ({error.filename})" if getattr(error, "filename", None) else ""
        raise OutputError(f"could not write the output folder {out}: {error.strerror or error}{where}; "
                          f"an earlier {out.name} is unchanged.") from None
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


__all__ = ["checked_output", "atomic_output", "output_folder", "check_output_folder", "clean_stale_staging",
           "not_written_by_bagkit", "read_marker", "write_marker", "OUTPUT_MARKER", "STAGING_MARKER"]
