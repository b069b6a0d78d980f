"""Time `bagkit report` end to end on the example cohort and on a 100 000-subject synthetic cohort.

Reference in the same run: R computing the same Table 1 statistics (r/reference/table1_reference.R,
aov + TukeyHSD, t.test, chisq.test, wilcox.test, quantile) on the same CSV.

    .venv/bin/python benchmarks/bench_report.py [--subjects 100000]
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "examples"))

from make_example_cohort import make_cohort  # noqa: E402

import bagkit  # noqa: E402


def timed(label: str, function):
    start = time.perf_counter()
    value = function()
    seconds = time.perf_counter() - start
    print(f"  {label:<42s} {seconds:8.2f} s", flush=True)
    return value, seconds


def bench(cohort_csv: Path, visits_csv: Path | None, work: Path, name: str) -> dict[str, float]:
    print(f"{name}:")
    cohort, t_read = timed("read + validate cohort", lambda: bagkit.read_cohort(cohort_csv, visits=visits_csv))
    results, t_analyze = timed("analyze (all sections)", lambda: bagkit.analyze(cohort))
    _, t_table1 = timed("  of which Table 1 alone", lambda: bagkit.analyses.table1(cohort))
    _, t_write = timed("write PDF + CSVs + figures", lambda: results.write(work / f"out-{name}", force=True))
    cli = [str(Path(sys.executable).with_name("bagkit")), "report", str(cohort_csv), "-o", str(work / f"cli-{name}"),
           "--force", "-q"] + (["--visits", str(visits_csv)] if visits_csv else [])
    _, t_cli = timed("`bagkit report` CLI, fresh process", lambda: subprocess.run(cli, check=True,
                                                                                    capture_output=True))
    reference = ROOT / "r" / "reference" / "table1_reference.R"
    t_r = float("nan")
    if shutil.which("Rscript") and reference.is_file():
        _, t_r = timed("R reference: Table 1 statistics (Rscript)",
                       lambda: subprocess.run(["Rscript", "--vanilla", str(reference), str(cohort_csv),
                                               str(work / f"r-{name}.csv"), "HC"], check=True, capture_output=True))
        print(f"  bagkit Table 1 / R Table 1 time ratio: {t_table1 / t_r:.2f}")
    return {"read": t_read, "analyze": t_analyze, "table1": t_table1, "write": t_write, "cli": t_cli, "r": t_r}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--subjects", type=int, default=100_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        bench(ROOT / "examples" / "cohort.csv", ROOT / "examples" / "visits.csv", work, "example-668")
        n = args.subjects
        sizes = {"NMOSD": int(n * 0.3), "RRMS": int(n * 0.3)}
        sizes["HC"] = n - sizes["NMOSD"] - sizes["RRMS"]
        cohort, visits = make_cohort(n_per_group=sizes)
        cohort.to_csv(work / "big.csv", index=False)
        visits.to_csv(work / "big_visits.csv", index=False)
        bench(work / "big.csv", work / "big_visits.csv", work, f"synthetic-{n}")


if __name__ == "__main__":
    main()
