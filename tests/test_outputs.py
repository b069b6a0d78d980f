"""Output files: never over an input, an existing file only with force, replaced atomically; output
folders replaced only when bagkit wrote them (issue 11)."""
from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys

import pytest

from bagkit.errors import OutputError, OutputExistsError
from bagkit.io.outputs import (
    OUTPUT_MARKER,
    STAGING_MARKER,
    atomic_output,
    check_output_folder,
    checked_output,
    clean_stale_staging,
    output_folder,
)


def test_an_input_is_never_an_output(tmp_path):
    cohort = tmp_path / "cohort.csv"
    cohort.write_text("subject_id\n1\n")
    for force in (False, True):
        with pytest.raises(OutputExistsError, match="overwrite the input"):
            checked_output(cohort, inputs=[cohort], force=force)
    with pytest.raises(OutputExistsError, match="overwrite the input"):  # another spelling of the same file
        checked_output(tmp_path / "." / "cohort.csv", inputs=[str(cohort)], force=True)
    assert cohort.read_text() == "subject_id\n1\n"


def test_an_existing_output_needs_force(tmp_path):
    out = tmp_path / "predictions.csv"
    assert checked_output(out) == out  # new: fine
    out.write_text("old")
    with pytest.raises(OutputExistsError, match="--force"):
        checked_output(out)
    assert checked_output(out, force=True) == out
    with pytest.raises(OutputExistsError, match="folder"):
        checked_output(tmp_path, force=True)


def test_atomic_output_replaces_only_on_success(tmp_path):
    out = tmp_path / "sub" / "filled.nii.gz"
    with atomic_output(out) as tmp:
        assert tmp.parent == out.parent and tmp.name.endswith(".nii.gz") and tmp != out
        tmp.write_text("new")
    assert out.read_text() == "new"
    with pytest.raises(RuntimeError):
        with atomic_output(out) as tmp:
            tmp.write_text("half")
            raise RuntimeError("the writer failed")
    assert out.read_text() == "new"                      # untouched
    assert sorted(p.name for p in out.parent.iterdir()) == ["filled.nii.gz"]  # no temporary left


# ----------------------------------------------------------------------------- output folders


def tree(folder) -> dict[str, str]:
    """Every file (SHA-256) and folder under ``folder``: the state a test asserts did not change."""
    out = {}
    for path in sorted(folder.rglob("*")):
        key = path.relative_to(folder).as_posix()
        out[key] = "<dir>" if path.is_dir() else hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def _write(out, files: dict[str, str], force=False, inputs=()):
    with output_folder(out, inputs=inputs, force=force) as staging:
        for name, text in files.items():
            (staging / name).parent.mkdir(parents=True, exist_ok=True)
            (staging / name).write_text(text)


def _hidden(parent):
    return sorted(p.name for p in parent.iterdir() if p.name.startswith("."))


def test_output_folder_is_marked_with_what_bagkit_wrote(tmp_path):
    out = tmp_path / "report"
    _write(out, {"results.csv": "a\n", "figures/f.png": "png"})
    record = json.loads((out / OUTPUT_MARKER).read_text())
    assert set(record["files"]) == {"results.csv", "figures/f.png"} and record["folders"] == ["figures"]
    assert record["files"]["results.csv"]["sha256"] == hashlib.sha256(b"a\n").hexdigest()
    assert _hidden(tmp_path) == []  # no staging left
    assert (out.stat().st_mode & 0o777) == 0o777 & ~_umask()  # not mkdtemp's 0700
    _write(out, {"results.csv": "b\n"}, force=True)  # bagkit's own folder: replaced whole
    assert tree(out).keys() == {OUTPUT_MARKER, "results.csv"} and (out / "results.csv").read_text() == "b\n"


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_force_refuses_a_folder_with_anything_bagkit_did_not_write(tmp_path):
    out = tmp_path / "report"
    _write(out, {"results.csv": "a\n", "figures/f.png": "png"})
    (out / "notes.txt").write_text("my notes")
    (out / "figures" / "mine.R").write_text("plot(1)")
    (out / "data").mkdir()
    (out / "data" / "raw.csv").write_text("1,2")
    (tmp_path / "elsewhere.csv").write_text("theirs")
    (out / "link.csv").symlink_to(tmp_path / "elsewhere.csv")
    before = tree(out)
    with pytest.raises(OutputExistsError, match="did not write") as refused:
        _write(out, {"results.csv": "b\n"}, force=True)
    assert "4 thing(s) bagkit did not write (data/, figures/mine.R, link.csv, notes.txt)" in str(refused.value)
    assert tree(out) == before and _hidden(tmp_path) == []
    (out / "notes.txt").unlink()
    (out / "figures" / "mine.R").unlink()
    (out / "link.csv").unlink()
    (out / "data" / "raw.csv").unlink()
    (out / "data").rmdir()
    (out / "results.csv").write_text("edited by hand")  # a file of bagkit's that the user changed
    before = tree(out)
    with pytest.raises(OutputExistsError, match=r"results.csv \(changed since bagkit wrote it\)"):
        _write(out, {"results.csv": "b\n"}, force=True)
    assert tree(out) == before
    # a folder bagkit never marked: refused whatever is in it, named
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    (theirs / "analysis.R").write_text("x <- 1")
    with pytest.raises(OutputExistsError, match=r"analysis\.R.*no \.bagkit-output marker"):
        _write(theirs, {"results.csv": "b\n"}, force=True)
    assert (theirs / "analysis.R").read_text() == "x <- 1"
    # an empty folder holds nothing to lose: replaced with force
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(OutputExistsError, match="--force"):
        _write(empty, {"results.csv": "b\n"})
    _write(empty, {"results.csv": "b\n"}, force=True)
    assert (empty / "results.csv").read_text() == "b\n"


def test_never_the_current_folder_an_ancestor_or_a_folder_holding_an_input(tmp_path, monkeypatch):
    work = tmp_path / "project" / "analysis"
    work.mkdir(parents=True)
    cohort = work / "cohort.csv"
    cohort.write_text("subject_id\n1\n")
    _write(tmp_path / "project" / "marked", {"x.csv": "1"})
    monkeypatch.chdir(work)
    before = tree(tmp_path)
    for given in (".", str(work), "..", str(tmp_path), "./"):
        with pytest.raises(OutputExistsError, match="current folder") as refused:
            _write(given, {"results.csv": "b\n"}, force=True)
        assert "never replaces it" in str(refused.value)
    with pytest.raises(OutputExistsError, match="holds the input"):
        _write(tmp_path / "project" / "marked", {"x.csv": "2"}, force=True,
               inputs=[tmp_path / "project" / "marked" / "x.csv"])
    assert tree(tmp_path) == before


def test_an_output_folder_that_cannot_be_created_is_a_clear_error(tmp_path):
    afile = tmp_path / "cohort.csv"
    afile.write_text("x")
    with pytest.raises(OutputError, match=r"cannot create the output folder .*cohort\.csv is a file"):
        check_output_folder(afile / "report")
    with pytest.raises(OutputExistsError, match="is not a folder"):
        check_output_folder(afile, force=True)
    with pytest.raises(OutputError, match=r"cannot create the predictions .*cohort\.csv is a file"):
        checked_output(afile / "sub" / "p.csv", what="predictions")
    link = tmp_path / "link"
    link.symlink_to(tmp_path / "elsewhere")
    with pytest.raises(OutputExistsError, match="symbolic link"):
        check_output_folder(link, force=True)


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def _staging(parent, name, kind, pid, suffix="k3j2h1x9"):
    folder = parent / f".{name}.bagkit-{kind}.{suffix}"
    folder.mkdir()
    (folder / STAGING_MARKER).write_text(json.dumps({"pid": pid, "host": socket.gethostname()}))
    return folder


def test_staging_of_killed_runs_is_cleaned_and_a_parked_output_put_back(tmp_path):
    dead = _dead_pid()
    new = _staging(tmp_path, "report", "new", dead)
    (new / "results.csv").write_text("half written")
    live = _staging(tmp_path, "report", "new", os.getpid(), "aaaaaaaa")  # a run still going: kept
    other = _staging(tmp_path, "other", "new", dead, "bbbbbbbb")         # another folder's: kept
    lookalike = tmp_path / ".report.bagkit-new.cccccccc"                # no marker: not bagkit's
    lookalike.mkdir()
    (lookalike / "x").write_text("x")
    legacy = tmp_path / ".report.old.a1b2c3d4"   # an older bagkit's staging (no marker): named, kept
    legacy.mkdir()
    # killed between "move the old output aside" and "move the new one in": the old one is put back
    parked = _staging(tmp_path, "report", "old", dead, "dddddddd")
    _write(parked / "report", {"results.csv": "previous"})
    done = clean_stale_staging(tmp_path / "report")
    assert (tmp_path / "report" / "results.csv").read_text() == "previous"
    assert any("put back the previous output" in d for d in done)
    assert not new.exists() and not parked.exists()
    assert live.exists() and other.exists() and (lookalike / "x").read_text() == "x" and legacy.exists()
    assert any(".report.old.a1b2c3d4: left alone" in d for d in done)
    # the next run cleans by itself, then needs --force to replace the restored output
    new2 = _staging(tmp_path, "report", "new", dead, "eeeeeeee")
    with pytest.raises(OutputExistsError, match="--force"):
        _write(tmp_path / "report", {"results.csv": "next"})
    assert not new2.exists()
    _write(tmp_path / "report", {"results.csv": "next"}, force=True)
    assert (tmp_path / "report" / "results.csv").read_text() == "next"


def test_a_failed_or_interrupted_write_leaves_the_previous_output(tmp_path):
    out = tmp_path / "report"
    _write(out, {"results.csv": "previous"})
    before = tree(out)
    for failure in (RuntimeError("the PDF writer failed"), KeyboardInterrupt()):
        with pytest.raises(type(failure)):
            with output_folder(out, force=True) as staging:
                (staging / "results.csv").write_text("half")
                raise failure
        assert tree(out) == before and _hidden(tmp_path) == []


def test_a_run_killed_mid_write_is_cleaned_up_by_the_next(tmp_path):
    out = tmp_path / "report"
    _write(out, {"results.csv": "previous"})
    before = tree(out)
    code = ("import sys, time\nfrom bagkit.io.outputs import output_folder\n"
            f"with output_folder({str(out)!r}, force=True) as staging:\n"
            "    (staging / 'results.csv').write_text('half')\n"
            "    print('writing', flush=True)\n"
            "    time.sleep(600)\n")
    process = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
                               env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    try:
        assert process.stdout.readline().strip() == "writing"
        left = _hidden(tmp_path)
        assert len(left) == 1 and left[0].startswith(".report.bagkit-new.")
    finally:
        process.kill()  # SIGKILL: no clean-up of its own
        process.wait()
    assert _hidden(tmp_path) == left and tree(out) == before
    _write(out, {"results.csv": "next"}, force=True)
    assert _hidden(tmp_path) == [] and (out / "results.csv").read_text() == "next"


def test_the_command_process_leaves_every_file_whole_and_the_right_exit_code(tmp_path):
    """`bagkit` ends its process without interpreter teardown (bagkit.cli.main): every output must
    be complete on disk, the marker must list it, stdout/stderr must be flushed, and the exit
    codes must be click's (0 done, 1 a BagkitError, 2 a usage error)."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    out = tmp_path / "report"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-m", "bagkit", "report", str(root / "examples" / "cohort.csv"),
                           "--visits", str(root / "examples" / "visits.csv"), "-o", str(out)],
                          capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    assert f"wrote {out / 'results.csv'}" in done.stdout  # the last lines reached the pipe
    assert "report: HTML" in done.stderr
    marker = json.loads((out / OUTPUT_MARKER).read_text())
    on_disk = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file() and p.name != OUTPUT_MARKER}
    assert set(marker["files"]) == on_disk
    for name, record in marker["files"].items():  # each file as bagkit finished it
        assert hashlib.sha256((out / name).read_bytes()).hexdigest() == record["sha256"], name
    assert (out / "report.pdf").read_bytes().rstrip().endswith(b"%%EOF")
    assert (out / "report.html").read_text(encoding="utf-8").rstrip().endswith("</html>")
    import zipfile

    with zipfile.ZipFile(out / "report.docx") as docx:
        assert docx.testzip() is None
    rows = (out / "results.csv").read_text().splitlines()
    assert len(rows) > 1000 and rows[-1].count(",") == rows[0].count(",")

    failed = subprocess.run([sys.executable, "-m", "bagkit", "report", str(tmp_path / "absent.csv")],
                            capture_output=True, text=True, env=env, timeout=120)
    assert failed.returncode == 2 and "does not exist" in failed.stderr
    refused = subprocess.run([sys.executable, "-m", "bagkit", "report", str(root / "examples" / "cohort.csv"),
                              "--visits", str(root / "examples" / "visits.csv"), "-o", str(out)],
                             capture_output=True, text=True, env=env, timeout=120)
    assert refused.returncode == 1 and "Error:" in refused.stderr
