"""The design's boundaries: only the bridge imports rpy2; the core never imports torch; R files ship."""
from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_import_bagkit_imports_neither_torch_nor_rpy2_nor_dask():
    code = ("import sys, bagkit, bagkit.cli, bagkit.report, bagkit.predictors.distributed; "
            "bad = [m for m in ('torch', 'rpy2', 'dask', 'distributed') if m in sys.modules]; "
            "print(bad); sys.exit(bool(bad))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_serial_preprocessing_never_imports_dask():
    """bagkit preprocess without --scheduler / --workers: its modules leave Dask out."""
    code = ("import sys, bagkit.cli.preprocess, bagkit.imaging.pipeline; "
            "bad = [m for m in ('dask', 'distributed') if m in sys.modules]; print(bad); sys.exit(bool(bad))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_serial_prediction_never_imports_dask(tmp_path):
    """Without --scheduler / --workers, predict_cohort runs as before and Dask stays out."""
    code = (
        "import sys, pandas as pd\n"
        "from bagkit._testing.counting import CountingPredictor, write_counting_scans\n"
        "from bagkit.predictors import predict_cohort\n"
        f"paths = write_counting_scans({str(tmp_path)!r}, [1, 2])\n"
        "out = predict_cohort(pd.DataFrame({'scan': [str(p) for p in paths]}), CountingPredictor(),\n"
        f"                    cache_dir={str(tmp_path / 'cache')!r}, progress=False)\n"
        "assert list(out.brain_age) == [21.0, 22.0], out\n"
        "bad = [m for m in ('dask', 'distributed') if m in sys.modules]; print(bad); sys.exit(bool(bad))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_import_linter_contracts_hold():
    lint = Path(sys.executable).with_name("lint-imports")
    done = subprocess.run([str(lint)], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout


def test_only_the_bridge_imports_rpy2():
    importers = [p.relative_to(ROOT).as_posix() for p in (ROOT / "bagkit").rglob("*.py")
                 if any(line.lstrip().startswith(("import rpy2", "from rpy2"))
                        for line in p.read_text(encoding="utf-8").splitlines())]
    assert importers == ["bagkit/rbridge.py"]


def test_r_scripts_found_in_editable_install():
    from bagkit.rbridge import r_scripts_dir
    assert (r_scripts_dir() / "bridge.R").is_file()


def test_wheel_ships_the_r_scripts(tmp_path):
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(ROOT)],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    wheel = next(tmp_path.glob("bagkit-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "bagkit/r/bridge.R" in names
    assert not any(n.startswith(("predictors/", "tests/")) for n in names)
