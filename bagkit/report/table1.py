"""Table 1 and Figure 1 as the paper sets them, as blocks of the report model."""
from __future__ import annotations

from bagkit.report import format as fmt
from bagkit.report.tables import Figure, Table, Together

CAPTION = ("Table 1. Demographic characteristics, baseline status and deep-learning-derived brain age "
           "of participants.")
FOOTNOTE = ("Continuous variables other than EDSS are reported as the mean ± standard deviation "
            "[min–max]; brain age gap and predicted standard deviation as mean ± SD (95% CI). EDSS are "
            "reported as the median (IQR) [min–max]. Categorical variables as n/N (%).")
FIGURE1 = ("Figure 1. Deep-learning-derived brain age in each group. (A) Predicted brain age vs chronological "
           "age (dashed: identity). (B) Brain age gap (BAG) per group. (C) Mean BAG ± SE per center and group.")


def group_table(table, name: str, caption: str, footnotes: list[str]) -> Table:
    """A Table-1-style GroupTable as a paper table with its caption and footnotes (Tables 1 and 2)."""
    rows = fmt.table_rows(table)
    body = rows[1:]
    sections = frozenset(i for i, row in enumerate(body) if all(v == "" for v in row[1:]))
    notes = list(footnotes)
    if any("†" in value for row in rows for value in row):
        pairwise = next((r for r in table.rows if len([x for x in r.tests if x.contrast != "overall"]) > 1), None)
        contrasts = [t.contrast for t in pairwise.tests if t.contrast != "overall"] if pairwise else []
        notes.append("† p < 0.001 for every pairwise comparison" + (f" ({', '.join(contrasts)})." if contrasts
                                                                     else "."))
    tests = fmt.tests_used(table)
    if tests:
        notes.append("Tests: " + "; ".join(tests) + ". Pairwise p values are Tukey HSD for continuous "
                     "variables with more than two groups.")
    options = table.options
    if options.overall:
        notes.append("Overall: every subject of the groups shown, described as the groups are.")
    if options.p_adjust:
        method = {"holm": "Holm's step-down method", "BH": "Benjamini–Hochberg's false discovery rate"}
        notes.append(f"p ({fmt.ADJUSTED[options.p_adjust]}): the variable-level p value of each row (the overall "
                     f"test, or the one test of two groups) adjusted across the table's rows by "
                     f"{method[options.p_adjust]} (R: p.adjust(p, \"{options.p_adjust}\")).")
    if options.smd:
        notes.append("SMD: absolute standardized mean difference, (mean₁ − mean₂) / √((s₁² + s₂²) / 2), with "
                     "p(1 − p) as the variance of a proportion (R tableone's and cobalt's pooled SD); with more "
                     "than two groups the mean of the pairwise SMDs, as tableone prints it.")
    if options.missing:
        notes.append("Missing, n: subjects without a value, all groups together; \"n = …\" in a cell: the "
                     "subjects described when some of that group are missing.")
    return Table.of(name, caption, [rows[0]], body, notes, section_rows=sections)


def age_adjusted(adjusted, corrected: bool) -> list:
    """BAG between groups by lm(bag ~ group) beside lm(bag ~ group + age)."""
    if adjusted is None or not adjusted.effects:
        return []
    pairs = list(dict.fromkeys(e.groups for e in adjusted.effects))
    rows = []
    for pair in pairs:
        cells = [f"{pair[0]} − {pair[1]}"]
        for adjust in ((), ("age",)):
            effect = next((e for e in adjusted.effects if e.groups == pair and e.adjusted_for == adjust), None)
            cells += (["-", "-"] if effect is None else
                      [f"{effect.estimate:+.2f} ({effect.ci_low:+.2f} to {effect.ci_high:+.2f})",
                       fmt.p_value(effect.p)])
        rows.append(cells)
    what = "bias-corrected BAG" if corrected else "BAG"
    return [Table.of("bag_age_adjusted", f"Difference in {what} between groups, unadjusted and adjusted for age at "
                     f"scan", [["Comparison", "Unadjusted: difference (95% CI)", "p",
                                "Adjusted for age: difference (95% CI)", "p"]], rows,
                     ["R: lm(bag ~ group) and lm(bag ~ group + age) on the subjects of the two groups; the group "
                      "coefficient with its t-test p and confint() 95% CI. Age is a covariate whatever the "
                      "correction, as Le et al. (2018) recommend for BAG group comparisons."])]


def example_subjects(results) -> list:
    """Figure 1 D–G: the example subjects' input slices beside their predicted age distributions."""
    examples = results.example_subjects
    if examples is None or not examples.subjects:
        return []
    from bagkit.plots.cohort import group_colors
    from bagkit.plots.examples import example_subjects_figure, panel_letters

    letters = panel_letters(len(examples.subjects))
    span = letters[0] if len(letters) == 1 else f"{letters[0]}–{letters[-1]}"
    if examples.has_distribution:
        output = (f"Right: the predicted probability of each {examples.subjects[0].bin_width:g}-year "
                  f"age bin ({examples.predictor}'s output; the brain age is its mean and the SD its standard "
                  f"deviation)")
    else:
        output = (f"Right: {examples.predictor} gives no distribution over age bins, so the curve is the Gaussian "
                  f"N(brain age, SD²) of its predictive SD, drawn for orientation only")
    chosen = ("chosen subjects" if all(s.chosen_as == "chosen" for s in examples.subjects) else
              "per group, the subjects with the smallest and the largest brain age gap (BAG as predicted, before "
              "any age-bias correction)")
    panels = "; ".join(
        f"({letter}) {s.group} {s.subject_id}, {s.chosen_as}: brain age {s.brain_age:.1f} ± {s.brain_age_sd:.1f} "
        f"years at age {s.age:.1f}, BAG {s.bag:+.1f} years"
        + (f" ({s.bag_corrected:+.1f} bias-corrected)" if s.bag_corrected is not None else "")
        for letter, s in zip(letters, examples.subjects))
    caption = (f"Figure 1 {span}. Sample inputs and prediction results: {chosen}. Left: mid sagittal, coronal "
               f"and axial slices of the input as the predictor read it (after preprocessing; the subject's left on "
               f"the left). {output}. Solid line: brain age; dashed lines: ± SD of the prediction; dotted line: "
               f"chronological age. {panels}.")
    colors = group_colors(results.cohort)
    return [Together(Figure("figure1_examples", caption, lambda: example_subjects_figure(examples, colors)))]


def blocks(results) -> list:
    cohort = results.cohort
    out = [group_table(results.table1, "table1", CAPTION, [FOOTNOTE])]
    out += age_adjusted(results.age_adjusted, cohort.bias_corrected)
    if cohort.has("brain_age"):
        from bagkit.plots.cohort import figure1

        centers = results.center_means
        out.append(Together(Figure("figure1", FIGURE1, lambda: figure1(cohort, centers))))
    out += example_subjects(results)
    return out


def supplementary(results) -> list:
    return []
