"""The last page of the report: what was skipped and why, and everything needed to re-run it —
software versions, the input files' SHA-256, the options, the date — as ``analyze()`` captured
them in ``Results.provenance`` (this module only formats)."""
from __future__ import annotations

from bagkit.report.layout import CONTENT_WIDTH, gap, paper_table, paragraph


def _on_or_off(value: bool) -> str:
    return "yes" if value else "no"


def _join(values) -> str:
    return ", ".join(str(v) for v in values) if values else "none"


def options(results) -> list[tuple[str, str]]:
    """The analysis options in words (defaults included, so a reader knows what was assumed)."""
    cohort, o = results.cohort, results.options
    matching = results.matching
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
        ("Matching covariates", _join(o.covariates_to_match) + ("" if o.match_covariates is not None
                                                                  else " (default)")),
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
    provenance = results.provenance
    rows = [(f.role, f.name, f.sha256 or "(file not found when the analysis ran)") for f in provenance.inputs]
    if provenance.extra:
        out += [paragraph("Derived data", "caption"),
                paper_table([["What", "How"], *[list(row) for row in provenance.extra]], widths), gap(4)]
    if rows:
        out += [paragraph("Input files (SHA-256)", "caption"),
                paper_table([["Role", "File", "SHA-256"], *[list(r) for r in rows]],
                            [CONTENT_WIDTH * 0.14, CONTENT_WIDTH * 0.26, CONTENT_WIDTH * 0.6]), gap(4)]
    out += [paragraph("Software", "caption"),
            paper_table([["Software", "Version"], *[list(row) for row in provenance.software]], widths), gap(4),
            paragraph(f"Analysis run on {provenance.date}. The same inputs, options and software "
                      f"give the same numbers: every random step is seeded.", "note")]
    return out
