"""The last page of the report: what was skipped and why, and everything needed to re-run it —
software versions, the input files' SHA-256, the options, the date — as ``analyze()`` captured
them in ``Results.provenance`` (this module only formats)."""
from __future__ import annotations

from bagkit.report.tables import Table, Text


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
        ("Table 1 extra columns", _table1_options(o)),
    ]


def _table1_options(o) -> str:
    t = getattr(o, "table1", None)
    if t is None:
        return "none"
    shown = [name for name, on in (("SMD", t.smd), ("missing counts", t.missing), ("overall", t.overall)) if on]
    if t.p_adjust:
        shown.append(f"p adjusted ({t.p_adjust})")
    return _join(shown)


def blocks(results) -> list:
    out: list = [Text("Notes and provenance", "heading")]
    skipped = list(results.skipped)
    if skipped:
        out.append(Text("What was skipped or partial, and why", "caption"))
        out += [Text(f"• {note}", "body") for note in skipped]
    else:
        out.append(Text("Every analysis of the report could be made from this cohort.", "body"))
    out.append(Table.of("provenance_options", "Options", [["Option", "Value"]], options(results)))
    provenance = results.provenance
    if provenance.extra:
        out.append(Table.of("provenance_derived", "Derived data", [["What", "How"]], provenance.extra))
    rows = [(f.role, f.name, f.sha256 or "(file not found when the analysis ran)") for f in provenance.inputs]
    if rows:
        out.append(Table.of("provenance_inputs", "Input files (SHA-256)", [["Role", "File", "SHA-256"]], rows))
    out.append(Table.of("provenance_software", "Software", [["Software", "Version"]], provenance.software,
                        [f"Analysis run on {provenance.date}. The same inputs, options and software give the "
                         f"same numbers: every random step is seeded."]))
    return out
