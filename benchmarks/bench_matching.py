"""Time propensity-score matching (bagkit.stats.matching.match_groups → R MatchIt through rpy2) on 1 000,
10 000 and 100 000 subjects, and where the time goes.

For each size (subjects in the two matched groups, NMOSD and RRMS half each, from
examples/make_example_cohort.py) it prints:
  * the wall time of ``match_groups`` and its growth factor against the previous size;
  * inside it, R's own time for ``matchit()`` and ``summary()`` (r/matching.R returns
    seconds_matchit / seconds_summary) and the rest: bagkit's checks and encoding, the pandas ↔ R
    conversion both ways, building the Matching object;
  * the pandas → R conversion of the data frame alone;
  * the reference in the same run: a plain ``Rscript r/reference/matching_reference.R`` on the same
    CSV (same covariates, same matchit() call), its wall time and its own read/matchit/summary times
    (the difference is R's start-up and loading MatchIt).
Once per run: the R start-up inside Python (rpy2 import + embedded R, sourcing r/*.R, loading MatchIt).

    .venv/bin/python benchmarks/bench_matching.py                # 1 000, 10 000, 100 000
    .venv/bin/python benchmarks/bench_matching.py --quick        # 1 000, 10 000
    .venv/bin/python benchmarks/bench_matching.py --sizes 1000,20000 --repeats 3

No assertions: it prints its figures. MatchIt's nearest-neighbour matching compares each treated
subject with every control still available, so its time grows about quadratically with the size;
100 000 subjects take minutes (see docs/matching.md for the figures on the development machine).
"""
from __future__ import annotations

import argparse
import importlib.util
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT / "r" / "reference" / "matching_reference.R"
COVARIATES = ("sex", "age_at_diagnosis", "edss", "nbv")
GROUPS = ("NMOSD", "RRMS")


def _load_generator():
    spec = importlib.util.spec_from_file_location("make_example_cohort", ROOT / "examples" / "make_example_cohort.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _sizes(text: str) -> list[int]:
    try:
        sizes = [int(float(v)) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--sizes takes whole numbers separated by commas, got {text!r}") from None
    if not sizes or min(sizes) < 20:
        raise argparse.ArgumentTypeError("--sizes needs at least one size of 20 subjects or more")
    return sizes


def _line(label: str, seconds: float, extra: str = "") -> None:
    print(f"  {label:<56s} {seconds:9.3f} s{extra}", flush=True)


def r_startup(bagkit, cohort) -> None:
    """R start-up inside Python, once: rpy2 + embedded R, sourcing r/*.R, the first matchit() call."""
    from bagkit import rbridge
    from bagkit.stats.matching import match_groups

    print("R inside Python (once per process):")
    start = time.perf_counter()
    rbridge._rpy2()
    _line("import rpy2 + start embedded R", time.perf_counter() - start)
    start = time.perf_counter()
    rbridge._script("bridge.R")
    rbridge._script("matching.R")
    rbridge.require_r_packages("MatchIt")
    _line("source r/bridge.R, r/matching.R; find MatchIt", time.perf_counter() - start)
    small = cohort
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        first = match_groups(small, groups=GROUPS, covariates=COVARIATES)
    cold = time.perf_counter() - start
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        match_groups(small, groups=GROUPS, covariates=COVARIATES)
    warm = time.perf_counter() - start
    _line(f"first match_groups ({len(first.subjects)} subjects), cold", cold)
    _line("the same again, warm", warm)
    print(f"  MatchIt {first.matchit_version}", flush=True)
    if shutil.which("Rscript"):
        start = time.perf_counter()
        subprocess.run(["Rscript", "--vanilla", "-e", "suppressPackageStartupMessages(library(MatchIt))"],
                       check=True, capture_output=True)
        _line("for comparison: Rscript start-up + library(MatchIt)", time.perf_counter() - start)


def conversion_seconds(frame: pd.DataFrame) -> float:
    """pandas → R data.frame, as rbridge.run_r converts (default + numpy + pandas converters)."""
    from bagkit import rbridge

    robjects, converter, localconverter, _, _ = rbridge._rpy2()
    start = time.perf_counter()
    with localconverter(converter):
        robjects.conversion.get_conversion().py2rpy(frame)
    return time.perf_counter() - start


def bench_size(bagkit, generator, n: int, work: Path, repeats: int, seed: int) -> dict[str, float]:
    from bagkit.stats.matching import match_groups

    sizes = {"NMOSD": n // 2, "RRMS": n - n // 2, "HC": 2}
    cohort_frame, _ = generator.make_cohort(seed=seed, n_per_group=sizes)
    csv = work / f"cohort-{n}.csv"
    cohort_frame.to_csv(csv, index=False)
    cohort = bagkit.read_cohort(csv)
    print(f"{n:,} subjects ({sizes['NMOSD']:,} NMOSD matched to {sizes['RRMS']:,} RRMS; covariates "
          f"{', '.join(COVARIATES)}):", flush=True)
    walls, matchits, summaries = [], [], []
    for _ in range(repeats):
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            matching = match_groups(cohort, groups=GROUPS, covariates=COVARIATES)
        walls.append(time.perf_counter() - start)
        matchits.append(matching.r_seconds.get("seconds_matchit", float("nan")))
        summaries.append(matching.r_seconds.get("seconds_summary", float("nan")))
    wall, t_matchit, t_summary = (statistics.median(v) for v in (walls, matchits, summaries))
    note = f"   (median of {repeats})" if repeats > 1 else ""
    _line("bagkit match_groups, wall", wall, note)
    _line("  of which R matchit()", t_matchit)
    _line("  of which R summary()", t_summary)
    _line("  the rest (checks, conversion both ways, objects)", wall - t_matchit - t_summary)
    sent = pd.DataFrame({"treat": (matching.subjects["treated"]).astype(int).to_numpy()})
    for i, _ in enumerate(COVARIATES, start=1):
        sent[f"x{i}"] = pd.Series(range(len(sent)), dtype=float)
    t_convert = conversion_seconds(sent)
    _line("  pandas → R conversion of the data frame alone", t_convert)
    print(f"  matched {sum(matching.n_matched.values()):,}; max |SMD| after {matching.max_abs_smd_after:.3f}",
          flush=True)
    result = {"n": n, "wall": wall, "matchit": t_matchit, "summary": t_summary, "convert": t_convert}
    result.update(reference(csv, work / f"ref-{n}"))
    return result


def reference(csv: Path, prefix: Path) -> dict[str, float]:
    """The same matching by a plain Rscript run of r/reference/matching_reference.R."""
    if shutil.which("Rscript") is None or not REFERENCE.is_file():
        print("  R reference: Rscript not found, skipped", flush=True)
        return {"r_wall": float("nan")}
    command = ["Rscript", "--vanilla", str(REFERENCE), str(csv), str(prefix), "--covariates", ",".join(COVARIATES),
               "--group", "group", "--groups", ",".join(GROUPS), "--seed", "20240101"]
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    r_wall = time.perf_counter() - start
    if done.returncode != 0:
        print(f"  R reference failed: {done.stderr.strip()[-500:]}", flush=True)
        return {"r_wall": float("nan")}
    timing = pd.read_csv(f"{prefix}_timing.csv", comment="#").set_index("step")["seconds"]
    inside = float(timing.sum())
    _line("R reference (Rscript), wall", r_wall)
    _line("  of which read.csv + prepare", float(timing.get("read", float("nan"))))
    _line("  of which matchit()", float(timing.get("matchit", float("nan"))))
    _line("  of which summary()", float(timing.get("summary", float("nan"))))
    _line("  the rest: R start-up, library(MatchIt), writing CSVs", r_wall - inside)
    return {"r_wall": r_wall, "r_matchit": float(timing.get("matchit", float("nan"))),
            "r_summary": float(timing.get("summary", float("nan")))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=_sizes, default=None,
                        help="subjects to match, comma-separated (default 1000,10000,100000)")
    parser.add_argument("--quick", action="store_true", help="only 1 000 and 10 000 subjects")
    parser.add_argument("--repeats", type=int, default=None,
                        help="runs per size below 100 000 (median reported; default 3, 1 for 100 000 and more)")
    parser.add_argument("--seed", type=int, default=20240101, help="seed of the synthetic cohorts")
    args, _ = parser.parse_known_args()  # run_all.py passes its own arguments through
    sizes = args.sizes or ([1_000, 10_000] if args.quick else [1_000, 10_000, 100_000])
    if max(sizes) >= 100_000:
        print("note: 100 000 subjects take several minutes (MatchIt's nearest neighbour grows about "
              "quadratically); --quick or --sizes chooses smaller sizes.", flush=True)

    import bagkit

    generator = _load_generator()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        warm_frame, _ = generator.make_cohort(seed=args.seed, n_per_group={"NMOSD": 100, "RRMS": 100, "HC": 2})
        warm_frame.to_csv(work / "warm.csv", index=False)
        r_startup(bagkit, bagkit.read_cohort(work / "warm.csv"))
        for n in sizes:
            repeats = args.repeats if args.repeats is not None else (1 if n >= 100_000 else 3)
            rows.append(bench_size(bagkit, generator, n, work, max(repeats, 1), args.seed))
    print("\nsummary (seconds; growth = time / time at the previous size):")
    print(f"  {'subjects':>9s} {'bagkit':>9s} {'growth':>7s} {'matchit':>9s} {'summary':>8s} {'rest':>7s} "
          f"{'convert':>8s} {'Rscript':>9s} {'growth':>7s}")
    previous = None
    for row in rows:
        growth = row["wall"] / previous["wall"] if previous else float("nan")
        r_growth = row["r_wall"] / previous["r_wall"] if previous else float("nan")
        rest = row["wall"] - row["matchit"] - row["summary"]
        print(f"  {row['n']:>9,d} {row['wall']:9.3f} {growth:7.1f} {row['matchit']:9.3f} {row['summary']:8.3f} "
              f"{rest:7.3f} {row['convert']:8.4f} {row['r_wall']:9.3f} {r_growth:7.1f}")
        previous = row


if __name__ == "__main__":
    main()
