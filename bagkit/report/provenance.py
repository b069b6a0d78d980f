"""The last page of the report: what was skipped and why, and everything needed to re-run it —
software versions, the input files' SHA-256, the options, the date."""
from __future__ import annotations

import datetime as _dt
import hashlib
import platform
from importlib import metadata
from pathlib import Path

from bagkit.analyses.matching import DEFAULT_COVARIATES
from bagkit.report.layout import CONTENT_WIDTH, gap, paper_table, paragraph

# Python packages whose versions can change a number in the report.
_PYTHON_PACKAGES = ("numpy", "pandas", "scipy", "statsmodels", "lifelines", "matplotlib", "reportlab", "rpy2")
_R_PACKAGES = ("MatchIt", "survival")


def sha256(path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def _on_or_off(value: bool) -> str:
    return "yes" if value else "no"


def _join(values) -> str:
    return ", ".join(str(v) for v in values) if values else "none"


def software(results) -> list[tuple[str, str]]:
    """bagkit, Python and the packages that compute; R and its packages when R ran; predictors."""
    import bagkit
    from bagkit import rbridge

    items = [("bagkit", bagkit.__version__), ("Python", platform.python_version())]
    items += [(name, _version(name)) for name in _PYTHON_PACKAGES]
    if rbridge.started():
        try:
            versions = rbridge.r_versions(*_R_PACKAGES)
        except Exception as error:  # noqa: BLE001 - the provenance page must still be written
            versions = {"R": f"unknown ({error})"}
        items += list(versions.items())
    else:
        items.append(("R", "not used in this run"))
    for dist in _predictor_distributions():
        items.append((dist, _version(dist)))
    return items


def _predictor_distributions() -> list[str]:
    from bagkit.predictors import ENTRY_POINT_GROUP

    names = []
    for entry in metadata.entry_points(group=ENTRY_POINT_GROUP):
        dist = getattr(entry, "dist", None)
        if dist is not None and dist.name not in names:
            names.append(dist.name)
    return sorted(names)


def inputs(results) -> list[tuple[str, str, str]]:
    """(role, file name, sha256) of every input file that still exists."""
    files = dict(getattr(results.cohort, "inputs", {}) or {})
    if not files and results.cohort.source:
        files = {"cohort": results.cohort.source}
    rows = []
    for role, path in files.items():
        p = Path(path)
        rows.append((role, p.name, sha256(p) if p.is_file() else "(file no longer there)"))
    return rows


def options(results) -> list[tuple[str, str]]:
    """The analysis options in words (defaults included, so a reader knows what was assumed)."""
    cohort, o = results.cohort, results.options
    matching = results.get("matching")
    if o.match_groups:
        groups = " vs ".join(o.match_groups)
    elif matching is not None:
        groups = " vs ".join(matching.primary.groups) + " (default: the first two patient groups)"
    else:
        groups = "the first two patient groups (default)"
    rule = (f"highest sensitivity at specificity ≥ {100 * o.specificity_at_least:.0f}%" if o.cutoff_rule == "spec80"
            else "Youden index")
    return [
        ("Control group", str(cohort.control) if cohort.control else "none (--no-control)"),
        ("Groups, in order", _join(cohort.groups)),
        ("Matched groups", groups),
        ("Matching covariates", _join(o.match_covariates) if o.match_covariates is not None
         else _join(DEFAULT_COVARIATES) + " (default)"),
        ("Matching", f"nearest neighbour on a logistic propensity score, ratio 1:{o.match_ratio}, "
                     f"caliper {o.match_caliper if o.match_caliper is not None else 'none'}, "
                     f"replacement {_on_or_off(o.match_replace)}, exact on {_join(o.match_exact)}, "
                     f"order {o.match_order}"),
        ("BAG cutoff rule", rule),
        ("Cutoff bootstrap replicates", str(o.cutoff_bootstrap) if o.cutoff_bootstrap else "none"),
        ("Multivariable Cox covariates", "all covariates" if o.cox_selection == "all"
         else "univariable p < 0.05, BAG always kept"),
        ("Random seed", str(o.seed)),
    ]


def flowables(results, figures_dir=None) -> list:
    out = [paragraph("Notes and provenance", "heading")]
    skipped = list(results.skipped)
    if skipped:
        out.append(paragraph("What was skipped or partial, and why", "caption"))
        out += [paragraph(f"• {note}", "body") for note in skipped]
    else:
        out.append(paragraph("Every analysis of the report could be made from this cohort.", "body"))
    out.append(gap(4))
    widths = [CONTENT_WIDTH * 0.3, CONTENT_WIDTH * 0.7]
    out += [paragraph("Options", "caption"),
            paper_table([["Option", "Value"], *[list(row) for row in options(results)]], widths), gap(4)]
    rows = inputs(results)
    if rows:
        out += [paragraph("Input files (SHA-256)", "caption"),
                paper_table([["Role", "File", "SHA-256"], *[list(r) for r in rows]],
                            [CONTENT_WIDTH * 0.14, CONTENT_WIDTH * 0.26, CONTENT_WIDTH * 0.6]), gap(4)]
    items = software(results)
    out += [paragraph("Software", "caption"),
            paper_table([["Software", "Version"], *[list(row) for row in items]], widths), gap(4),
            paragraph(f"Report made on {_dt.date.today().isoformat()}. The same inputs, options and software "
                      f"give the same numbers: every random step is seeded.", "note")]
    return out
