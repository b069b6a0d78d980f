"""Table 1 and Figure 1 as the paper sets them."""
from __future__ import annotations

from bagkit.plots.cohort import figure1
from bagkit.report import format as fmt
from bagkit.report.layout import CONTENT_WIDTH, figure, gap, group_table_widths, paper_table, paragraph

CAPTION = ("Table 1. Demographic characteristics, baseline status and deep-learning-derived brain age "
           "of participants.")
FOOTNOTE = ("Continuous variables other than EDSS are reported as the mean ± standard deviation "
            "[min–max]; brain age gap and predicted standard deviation as mean ± SD (95% CI). EDSS are "
            "reported as the median (IQR) [min–max]. Categorical variables as n/N (%).")


def group_table_flowables(table, caption: str, footnotes: list[str]) -> list:
    """A Table-1-style GroupTable as a paper table with its caption and footnotes (Table 1 and 2 share it)."""
    rows = fmt.table_rows(table)
    sections = {i for i, row in enumerate(rows) if i > 0 and all(v == "" for v in row[1:])}
    out = [paragraph(caption, "caption"),
           paper_table(rows, group_table_widths(len(table.groups)), section_rows=sections)]
    notes = list(footnotes)
    if any("†" in row[-1] for row in rows):
        notes.append("† p < 0.001 for every pairwise comparison"
                     + (" (" + ", ".join(t.contrast for t in next(
                         r for r in table.rows if len([x for x in r.tests if x.contrast != "overall"]) > 1
                     ).tests if t.contrast != "overall") + ")." if table.rows else "."))
    tests = fmt.tests_used(table)
    if tests:
        notes.append("Tests: " + "; ".join(tests) + ". Pairwise p values are Tukey HSD for continuous "
                     "variables with more than two groups.")
    out.append(gap(1.5))
    out += [paragraph(note, "note") for note in notes]
    return out


def age_adjusted_flowables(adjusted, corrected: bool) -> list:
    """BAG between groups by lm(bag ~ group) beside lm(bag ~ group + age)."""
    if adjusted is None or not adjusted.effects:
        return []
    pairs = list(dict.fromkeys(e.groups for e in adjusted.effects))
    rows = [["Comparison", "Unadjusted: difference (95% CI)", "p", "Adjusted for age: difference (95% CI)", "p"]]
    for pair in pairs:
        cells = [f"{pair[0]} − {pair[1]}"]
        for adjust in ((), ("age",)):
            effect = next((e for e in adjusted.effects if e.groups == pair and e.adjusted_for == adjust), None)
            cells += (["-", "-"] if effect is None else
                      [f"{effect.estimate:+.2f} ({effect.ci_low:+.2f} to {effect.ci_high:+.2f})", fmt.p_value(effect.p)])
        rows.append(cells)
    widths = [w * CONTENT_WIDTH for w in (0.2, 0.28, 0.1, 0.28, 0.1)]
    what = "bias-corrected BAG" if corrected else "BAG"
    return [gap(4), paragraph(f"Difference in {what} between groups, unadjusted and adjusted for age at scan",
                              "caption"), paper_table(rows, widths), gap(1.5),
            paragraph("R: lm(bag ~ group) and lm(bag ~ group + age) on the subjects of the two groups; the group "
                      "coefficient with its t-test p and confint() 95% CI. Age is a covariate whatever the "
                      "correction, as Le et al. (2018) recommend for BAG group comparisons.", "note")]


def flowables(results, figures_dir) -> list:
    cohort = results.cohort
    out = group_table_flowables(results.table1, CAPTION, [FOOTNOTE])
    out += age_adjusted_flowables(results.age_adjusted, cohort.bias_corrected)
    if cohort.has("brain_age"):
        out += [gap(6), paragraph("Figure 1. Deep-learning-derived brain age in each group. (A) Predicted "
                                  "brain age vs chronological age (dashed: identity). (B) Brain age gap (BAG) "
                                  "per group. (C) Mean BAG per center and group.", "caption"),
                figure(figure1(cohort), png_path=figures_dir / "figure1.png")]
    return out
