"""Output files: never over an input, an existing file only with force, replaced atomically."""
from __future__ import annotations

import pytest

from bagkit.errors import OutputExistsError
from bagkit.io.outputs import atomic_output, checked_output


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
