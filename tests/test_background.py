"""R sections in a forked child (bagkit.analyses.background): the same numbers, notes, warnings
and provenance as in one process, also with Supplementary Table 4's matching in a process of its
own (large cohorts); a child that fails is replaced by running here.

Each run is its own Python process: in this one R may have started already (other tests), and
then analyze() rightly keeps R in one process."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pandas as pd
from rtools import EXAMPLE_COHORT, EXAMPLE_VISITS, ROOT

SCRIPT = """
import json, sys, warnings
import bagkit
from bagkit import rbridge
cohort = bagkit.read_cohort(sys.argv[1], visits=sys.argv[2])
mode = sys.argv[4]
if mode == "split":  # Supplementary Table 4's matching in a process of its own, beside the primary one
    from bagkit.analyses import matching
    matching.SECOND_PROCESS_AT = 1
if mode == "crash":  # the child dies: analyze() must run matching here instead
    import os
    from bagkit.analyses import background
    real = background.Child.__init__
    def dying(self, function):
        real(self, lambda: os._exit(3))
    background.Child.__init__ = dying
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    results = bagkit.analyze(cohort)
results.tidy().to_csv(sys.argv[3], index=False, float_format="%.17g")
json.dump({"software": dict(results.provenance.software), "r_used": results.provenance.r_used,
           "r_here": rbridge.started(), "skipped": [str(s) for s in results.skipped],
           "warnings": sorted({str(w.message) for w in caught}),
           "matched": None if results.matching is None else len(results.matching.tidy())},
          open(sys.argv[3] + ".json", "w"))
"""


def _run(tmp_path, mode: str):
    out = tmp_path / f"{mode}.csv"
    cohort = tmp_path / "cohort.csv"
    if not cohort.exists():  # three patients without nbv: left out of the matching, with a warning
        frame = pd.read_csv(EXAMPLE_COHORT)
        frame.loc[frame.index[frame["group"] != "HC"][:3], "nbv"] = None
        frame.to_csv(cohort, index=False)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    if mode == "serial":
        env["BAGKIT_NO_FORK"] = "1"
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(cohort), str(EXAMPLE_VISITS), str(out), mode],
                          capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return pd.read_csv(out), json.loads((tmp_path / f"{mode}.csv.json").read_text())


def test_forked_r_sections_equal_one_process(tmp_path):
    if len(os.sched_getaffinity(0)) < 2:
        import pytest

        pytest.skip("one core: nothing is forked")
    serial, serial_info = _run(tmp_path, "serial")
    forked, forked_info = _run(tmp_path, "forked")
    crashed, crashed_info = _run(tmp_path, "crash")
    split, split_info = _run(tmp_path, "split")
    pd.testing.assert_frame_equal(forked, serial)
    pd.testing.assert_frame_equal(crashed, serial)
    pd.testing.assert_frame_equal(split, serial)
    assert split_info["warnings"] == serial_info["warnings"] and split_info["skipped"] == serial_info["skipped"]
    assert split_info["software"] == serial_info["software"]
    assert serial_info["matched"] and forked_info["matched"] == serial_info["matched"]
    assert (serial_info["r_here"], forked_info["r_here"], crashed_info["r_here"]) == (True, False, True)
    for info in (forked_info, crashed_info):
        assert info["r_used"] and info["software"] == serial_info["software"]
        assert info["skipped"] == serial_info["skipped"]
        assert info["warnings"] == serial_info["warnings"]
    assert serial_info["software"]["MatchIt"][0].isdigit()
    assert any("left out of the matching" in w for w in serial_info["warnings"])


def test_figures_encoded_in_a_child_equal_those_made_here():
    """FigureStore.encode_in_background: the vector PDFs and PNGs the child makes are byte for byte
    what this process makes, and a child that fails leaves them to be made here. The PNG is the
    vector PDF rendered by PDFium at 150 dpi, the figure's size to a pixel."""
    import io

    from PIL import Image

    import bagkit
    from bagkit.analyses.background import can_fork
    from bagkit.report import document
    from bagkit.report.figures import PNG_DPI, FigureStore
    from bagkit.report.tables import figures_of

    results = bagkit.analyze(bagkit.read_cohort(EXAMPLE_COHORT, visits=EXAMPLE_VISITS))
    blocks = figures_of(document(results))
    here = FigureStore()
    expected = {block.name: (here.pdf(block), here.png(block)) for block in blocks}
    for block in blocks:
        width, height = here.size_inches(block)
        size = Image.open(io.BytesIO(expected[block.name][1])).size  # PDFium rounds a fraction of a pixel up
        assert abs(size[0] - width * PNG_DPI) <= 1 and abs(size[1] - height * PNG_DPI) <= 1, (block.name, size)
    forked = FigureStore()
    mine = [block.name for block in forked.encode_in_background(blocks) if forked.pdf(block) and forked.png(block)]
    assert 0 < len(mine) <= len(blocks) and len(set(mine)) == len(mine)
    assert {block.name: (forked.pdf(block), forked.png(block)) for block in blocks} == expected
    if can_fork():
        failed = FigureStore()
        failed.encode_in_background(blocks)
        os.kill(failed._child[0], 9)  # the child dies: what it had to make is made here
        assert {block.name: (failed.pdf(block), failed.png(block)) for block in blocks} == expected
        late = FigureStore()  # this process takes nothing: the child encodes every figure
        late.encode_in_background(blocks)
        late.join()
        assert late._mine == set() and {b.name for b in blocks} <= {name for name, _ in late._encoded}
        assert {block.name: (late.pdf(block), late.png(block)) for block in blocks} == expected


def test_tokens_are_each_taken_once_by_whichever_process_asks():
    """background.Tokens: a parent and a forked child taking numbers as fast as they can get each
    number exactly once between them; a process taking slowly leaves more to the other."""
    import time

    from bagkit.analyses.background import Tokens

    for pause_here in (0.0, 0.02):
        tokens = Tokens(200)
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(read)
            taken = []
            while (number := tokens.take()) is not None:
                taken.append(number)
            os.write(write, bytes(taken))
            os._exit(0)
        os.close(write)
        here = []
        while (number := tokens.take()) is not None:
            here.append(number)
            time.sleep(pause_here)
        os.waitpid(pid, 0)
        there = []
        while chunk := os.read(read, 4096):
            there += list(chunk)
        os.close(read)
        tokens.close()
        assert sorted(here + there) == list(range(200))
        if pause_here:
            assert len(here) < len(there)
    assert Tokens(0).take() is None


def test_word_and_html_written_in_a_child_equal_those_written_here(tmp_path, monkeypatch):
    """Results.write lays out report.pdf here while a forked child writes report.docx and
    report.html: the documents are those of a one-process write, and a child that dies leaves
    them to be written here."""
    import zipfile

    import bagkit
    from bagkit import report

    results = bagkit.analyze(bagkit.read_cohort(EXAMPLE_COHORT, visits=EXAMPLE_VISITS))

    def written(name: str) -> dict[str, bytes]:
        out = tmp_path / name
        results.write(out)
        with zipfile.ZipFile(out / "report.docx") as docx:
            parts = {f"docx:{n}": docx.read(n) for n in docx.namelist() if not n.startswith("docProps/")}
        return {**parts, "html": (out / "report.html").read_bytes(),
                **{f"png:{p.name}": p.read_bytes() for p in (out / "figures").glob("*.png")}}

    monkeypatch.setenv("BAGKIT_NO_FORK", "1")
    serial = written("serial")
    monkeypatch.delenv("BAGKIT_NO_FORK")
    assert written("forked") == serial

    class Dying(report.Child):
        def __init__(self, function):
            super().__init__(lambda: os._exit(3))

    monkeypatch.setattr(report, "Child", Dying)
    assert written("crashed") == serial
    assert len([k for k in serial if k.startswith("docx:word/media/")]) >= 8  # the figures are in it


def test_a_child_dies_with_its_parent(tmp_path):
    """A forked child (R's sections, figures, documents) is killed by the kernel when its parent
    is killed, even by SIGKILL: nothing computes on for a run that is gone (Linux)."""
    import signal
    import sys
    import time

    import pytest

    if not sys.platform.startswith("linux"):
        pytest.skip("PR_SET_PDEATHSIG is Linux's")
    marker = tmp_path / "child.pid"
    script = ("import os, time\nfrom bagkit.analyses.background import Child\n"
              f"def work():\n    open({str(marker)!r}, 'w').write(str(os.getpid()))\n    time.sleep(120)\n"
              "child = Child(work)\ntime.sleep(120)\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    parent = subprocess.Popen([sys.executable, "-c", script], env=env)
    try:
        deadline = time.monotonic() + 60
        while not marker.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.2)
        child = int(marker.read_text())
        os.kill(child, 0)  # alive
        parent.send_signal(signal.SIGKILL)
        parent.wait(timeout=30)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                os.kill(child, 0)
            except ProcessLookupError:
                break
            time.sleep(0.05)
        else:
            os.kill(child, signal.SIGKILL)
            raise AssertionError("the child outlived its parent")
    finally:
        if parent.poll() is None:
            parent.kill()
