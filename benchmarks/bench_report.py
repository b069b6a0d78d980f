"""Time `bagkit report` stage by stage on the example cohort and on a large synthetic cohort.

Stages: imports (fresh process), R start, read, analyze, the report model (tables), figures
(drawn once as vector PDFs, PNGs rendered from them), each renderer (PDF, Word, HTML), then the whole CLI
with all three formats in a fresh process (R's matching and half the figures in forked children,
as a user runs it), the same in one process (BAGKIT_NO_FORK=1) and with the PDF only. The in-process
stages run R in this process, so their analysis is serial. Wall time and this process's CPU time are printed
for each (on a shared machine the CPU time is the steadier figure). Reference in the same run:
R computing the same Table 1 statistics (r/reference/table1_reference.R: aov + TukeyHSD, t.test,
chisq.test, wilcox.test, quantile) on the same CSV, and `Rscript -e 0` (R's start alone).

    .venv/bin/python benchmarks/bench_report.py [--subjects 100000] [--skip-large] [--repeat 5]
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "examples"))


def timed(label: str, function):
    wall, cpu = time.perf_counter(), time.process_time()
    value = function()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    print(f"  {label:<46s} {wall:8.2f} s wall {cpu:8.2f} s cpu", flush=True)
    return value, wall


def bench(cohort_csv: Path, visits_csv: Path | None, work: Path, name: str, repeat: int = 1) -> dict[str, float]:
    import bagkit
    from bagkit import rbridge
    from bagkit.report import document
    from bagkit.report.figures import FigureStore
    from bagkit.report.html import build_html
    from bagkit.report.pdf import build_pdf
    from bagkit.report.tables import figures_of
    from bagkit.report.word import build_docx

    print(f"{name}:")
    t = {}
    _, t["r_start"] = timed("R start (rpy2, MatchIt loaded)", lambda: rbridge.require_r_packages("MatchIt"))
    cohort, t["read"] = timed("read + validate cohort", lambda: bagkit.read_cohort(cohort_csv, visits=visits_csv))
    results, t["analyze"] = timed("analyze (all sections)", lambda: bagkit.analyze(cohort))
    _, t["table1"] = timed("  of which Table 1 alone", lambda: bagkit.table1(cohort))
    doc, t["model"] = timed("report model (every table formatted)", lambda: document(results))
    store = FigureStore()
    figures = figures_of(doc)
    _, t["draw"] = timed(f"figures drawn ({len(figures)})", lambda: [store.figure(f) for f in figures])
    _, t["vector"] = timed("figures encoded as vector PDF", lambda: [store.pdf(f) for f in figures])
    _, t["png"] = timed("figures' PNGs (the PDFs rendered by PDFium)", lambda: [store.png(f) for f in figures])
    out = work / f"out-{name}"
    out.mkdir(exist_ok=True)
    _, t["pdf"] = timed("report.pdf (reportlab + figures stamped)", lambda: build_pdf(doc, out / "r.pdf", store))
    _, t["docx"] = timed("report.docx (python-docx)", lambda: build_docx(doc, out / "r.docx", store))
    _, t["html"] = timed("report.html", lambda: build_html(doc, out / "r.html", store))
    _, t["write"] = timed("Results.write, all formats (fresh figures)",
                          lambda: results.write(work / f"write-{name}", force=True))
    bagkit_cli = [sys.executable, "-m", "bagkit"]
    _, t["import"] = timed("`import bagkit.cli`, fresh process",
                           lambda: subprocess.run([sys.executable, "-c", "import bagkit.cli"], check=True))
    cli = [*bagkit_cli, "report", str(cohort_csv), "-o", str(work / f"cli-{name}"), "--force", "-q"] + \
        (["--visits", str(visits_csv)] if visits_csv else [])
    one_process = {**os.environ, "BAGKIT_NO_FORK": "1"}
    variants = [("cli", "`bagkit report` CLI, pdf+docx+html, fresh", cli, None),
                ("cli_serial", "  the same in one process (BAGKIT_NO_FORK=1)", cli, one_process),
                ("cli_pdf", "  the same, PDF only (--formats pdf)", cli + ["--formats", "pdf"], None)]
    runs: dict[str, list[float]] = {key: [] for key, *_ in variants}
    for _ in range(repeat):  # interleaved: a machine whose speed drifts affects each variant alike
        for key, _label, command, env in variants:
            started = time.perf_counter()
            subprocess.run(command, check=True, capture_output=True, env=env)
            runs[key].append(time.perf_counter() - started)
    for key, label, *_ in variants:
        t[key] = statistics.median(runs[key])
        spread = f" (median of {repeat}: {min(runs[key]):.2f}-{max(runs[key]):.2f})" if repeat > 1 else ""
        print(f"  {label:<46s} {t[key]:8.2f} s wall{spread}", flush=True)
    reference = ROOT / "r" / "reference" / "table1_reference.R"
    t["r"] = float("nan")
    if shutil.which("Rscript") and reference.is_file():
        _, t["r_empty"] = timed("R reference: Rscript -e 0 (start only)",
                                lambda: subprocess.run(["Rscript", "--vanilla", "-e", "0"], check=True))
        _, t["r"] = timed("R reference: Table 1 statistics (Rscript)",
                          lambda: subprocess.run(["Rscript", "--vanilla", str(reference), str(cohort_csv),
                                                  str(work / f"r-{name}.csv"), "HC"], check=True,
                                                 capture_output=True))
        print(f"  bagkit Table 1 / R Table 1 time ratio: {t['table1'] / t['r']:.2f}")
    return t


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--subjects", type=int, default=100_000)
    parser.add_argument("--skip-large", action="store_true", help="only the example cohort")
    parser.add_argument("--repeat", type=int, default=5,
                        help="runs of each CLI variant on the example cohort (median printed; 1 for the large one)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        bench(ROOT / "examples" / "cohort.csv", ROOT / "examples" / "visits.csv", work, "example-668",
              repeat=args.repeat)
        if args.skip_large:
            return
        from make_example_cohort import make_cohort

        n = args.subjects
        sizes = {"NMOSD": int(n * 0.3), "RRMS": int(n * 0.3)}
        sizes["HC"] = n - sizes["NMOSD"] - sizes["RRMS"]
        cohort, visits = make_cohort(n_per_group=sizes)
        cohort.to_csv(work / "big.csv", index=False)
        visits.to_csv(work / "big_visits.csv", index=False)
        bench(work / "big.csv", work / "big_visits.csv", work, f"synthetic-{n}")


if __name__ == "__main__":
    main()
