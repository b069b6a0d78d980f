"""Propensity-score matching through R's MatchIt, and the paper's Table 2.

The paper matches NMOSD to RRMS 1:1 by nearest neighbour on the propensity score (logistic
regression on sex, age at diagnosis, baseline EDSS and normalized brain volume), checks balance
by standardized mean differences, and compares BAG in the matched sets (Table 2); Supplementary
Table 4 adds the predicted brain-age SD as a covariate. bagkit calls the real MatchIt:

    matching = match_groups(cohort, groups=("NMOSD", "RRMS"),
                            covariates=("sex", "age_at_diagnosis", "edss", "nbv"))
    matching.balance        # SMD and variance ratio before/after, per covariate (summary(m) in R)
    table = table2(cohort, matching)
    table.difference("bag")  # mean(NMOSD) - mean(RRMS) in the matched sets, 95% CI, p

is, in R (``r/matching.R`` does exactly this, with the columns renamed to safe names first)::

    m <- MatchIt::matchit(treat ~ sex + age_at_diagnosis + edss + nbv, data = d,
                          method = "nearest", distance = "glm", ratio = 1, m.order = "data")
    summary(m)

Column names never reach R code: covariates are sent as ``x1..xk`` (exact-only variables as
``e1..ej``), the treatment as ``treat`` (1 = the first group), sex as 0/1 (male = 1), text
columns as factors. Subjects with a missing covariate are left out of the matching, listed by id
in :attr:`Matching.left_out` and announced with a :class:`MatchingWarning`.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from bagkit.cohort import Cohort
from bagkit.errors import AnalysisError, RBridgeError
from bagkit.results import tidy_frame

DEFAULT_COVARIATES: tuple[str, ...] = ("sex", "age_at_diagnosis", "edss", "nbv")
M_ORDERS = ("data", "largest", "smallest", "random")
SMD_THRESHOLD = 0.1  # |SMD| below this after matching counts as balanced (Austin 2009)


_RESERVED = ("subject_id", "group")
_STATISTICS_BEFORE = ("mean_treated", "mean_control", "smd", "variance_ratio", "ecdf_mean", "ecdf_max")
_STATISTICS_AFTER = _STATISTICS_BEFORE + ("std_pair_distance",)
_SAMPLES = {"All": "all", "All (ESS)": "all_ess", "Matched": "matched", "Matched (ESS)": "matched_ess",
            "Unmatched": "unmatched", "Discarded": "discarded"}


class MatchingWarning(UserWarning):
    """Something about a matching the user should know (subjects left out, balance not reached)."""


@dataclass(frozen=True)
class Matching:
    """One propensity-score matching of group A (treated in MatchIt's terms) to group B.

    Attributes
    ----------
    groups : (A, B); A is ``treat = 1``.
    covariates : the cohort columns in the propensity model, in order.
    options : ratio, caliper, replace, exact, m_order, seed, method, distance.
    subjects : one row per subject sent to R: subject_id, group, treated, distance (propensity
        score), weight (MatchIt's matching weight), pair (subclass id; NaN when unmatched or with
        replacement), matched (weight > 0), discarded.
    pairs : treated_id, control_id, slot — one row per treated-control link (MatchIt's match.matrix).
    balance : per balance term (the distance, each numeric covariate, each factor level): term,
        covariate, level, label and the statistics of ``summary(m)`` before (``*_before``: sum.all)
        and after (``*_after``: sum.matched): mean_treated, mean_control, smd, variance_ratio,
        ecdf_mean, ecdf_max, std_pair_distance (after only).
    counts : summary(m)$nn with rows all, all_ess, matched, matched_ess, unmatched, discarded and a
        column per group.
    left_out : subject ids left out because a covariate (or exact variable) was missing.
    left_out_columns : per left-out id, the missing columns.
    left_out_groups : per left-out id, its group.
    matched_cohort : a Cohort of the matched subjects (groups A, B; no control group).
    notes : R's warnings and anything else the reader must know.
    analysis : the tidy name of the matched comparison (``psm``; balance rows are ``<analysis>_balance``).
    """

    groups: tuple[str, str]
    covariates: tuple[str, ...]
    options: Mapping[str, Any]
    subjects: pd.DataFrame
    pairs: pd.DataFrame
    balance: pd.DataFrame
    counts: pd.DataFrame
    left_out: tuple[str, ...]
    left_out_columns: Mapping[str, tuple[str, ...]]
    left_out_groups: Mapping[str, str]
    matched_cohort: Cohort
    labels: Mapping[str, str] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    analysis: str = "psm"
    matchit_version: str = ""
    r_seconds: Mapping[str, float] = field(default_factory=dict)

    @property
    def matched_ids(self) -> tuple[str, ...]:
        return tuple(self.subjects.loc[self.subjects["matched"], "subject_id"])

    @property
    def n_matched(self) -> dict[str, int]:
        return {g: int(self.counts.loc["matched", g]) for g in self.groups}

    @property
    def n_unmatched(self) -> dict[str, int]:
        return {g: int(self.counts.loc["unmatched", g]) for g in self.groups}

    @property
    def uniform_weights(self) -> bool:
        """True when every matched subject has weight 1 (1:1 without replacement, no caliper losses)."""
        weights = self.subjects.loc[self.subjects["matched"], "weight"].to_numpy()
        return bool(np.allclose(weights, 1.0))

    @property
    def max_abs_smd_after(self) -> float:
        covariates = self.balance[self.balance["covariate"] != "distance"]
        return float(covariates["smd_after"].abs().max())

    @property
    def balanced(self) -> bool:
        """Every covariate's |SMD| after matching is below :data:`SMD_THRESHOLD`."""
        return bool(self.max_abs_smd_after < SMD_THRESHOLD)

    @property
    def imbalanced_terms(self) -> tuple[str, ...]:
        rows = self.balance[(self.balance["covariate"] != "distance")
                            & ~(self.balance["smd_after"].abs() < SMD_THRESHOLD)]
        return tuple(rows["term"])

    @property
    def contrast(self) -> str:
        return f"{self.groups[0]} vs {self.groups[1]}"

    def tidy(self) -> pd.DataFrame:
        """Balance and counts as ``<analysis>_balance`` rows.

        ``psm_balance,all,age_at_diagnosis,NMOSD vs RRMS,smd,…`` (before matching),
        ``psm_balance,matched,…`` (after), ``psm_balance,NMOSD,subjects,,matched,119`` (counts).
        """
        name = f"{self.analysis}_balance"
        rows = []
        for _, row in self.balance.iterrows():
            for subset, suffix, statistics in (("all", "before", _STATISTICS_BEFORE),
                                               ("matched", "after", _STATISTICS_AFTER)):
                for statistic in statistics:
                    value = row[f"{statistic}_{suffix}"]
                    if value is not None and not (isinstance(value, float) and math.isnan(value)):
                        rows.append((name, subset, row["term"], self.contrast, statistic, value))
        for group in self.groups:
            for sample, value in self.counts[group].items():
                rows.append((name, group, "subjects", "", sample, value))
            left = sum(1 for g in self.left_out_groups.values() if g == group)
            rows.append((name, group, "subjects", "", "left_out_missing", left))
        return tidy_frame(rows)

    def summary(self) -> pd.DataFrame:
        """The balance table as the report prints it: term, SMD before/after, variance ratio before/after."""
        return self.balance[["term", "label", "smd_before", "smd_after", "variance_ratio_before",
                             "variance_ratio_after"]].reset_index(drop=True)


def _encode(values: pd.Series, column: str) -> pd.Series:
    """A covariate as it goes to R: numbers as doubles, sex 0/1 (male = 1), text as a factor."""
    if pd.api.types.is_bool_dtype(values):
        return values.astype(float)
    if pd.api.types.is_numeric_dtype(values):
        return values.astype(float)
    text = values.astype(object).where(values.notna(), None)
    known = {str(v) for v in text.dropna()}
    if column == "sex" or (known and known <= {"F", "M"}):
        bad = known - {"F", "M"}
        if bad:
            raise AnalysisError(f"column '{column}' must hold F or M to be used in the matching; found "
                                f"{', '.join(sorted(bad))}")
        return text.map({"F": 0.0, "M": 1.0}).astype(float)
    present = text.dropna()
    if len(present) and pd.to_numeric(present, errors="coerce").notna().all():
        return pd.to_numeric(text, errors="coerce").astype(float)
    levels = sorted(known)
    return pd.Series(pd.Categorical(text.map(lambda v: None if v is None else str(v)), categories=levels),
                     index=values.index)


def _check_columns(cohort: Cohort, names: Sequence[str], what: str) -> tuple[str, ...]:
    names = tuple(str(n) for n in names)
    for name in names:
        if name in _RESERVED:
            raise AnalysisError(f"'{name}' cannot be a matching {what}: it identifies subjects or groups")
        if name not in cohort.data.columns:
            raise AnalysisError(f"matching {what} {name!r} is not a column of the cohort; its columns are: "
                                f"{', '.join(str(c) for c in cohort.data.columns)}")
        if not cohort.has(name):
            raise AnalysisError(f"matching {what} {name!r} has no values in the cohort")
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        raise AnalysisError(f"matching {what}s name {', '.join(duplicated)} more than once")
    return names


def _default_groups(cohort: Cohort) -> tuple[str, str]:
    patients = cohort.patient_groups
    if len(patients) < 2:
        raise AnalysisError(f"matching needs two groups; the cohort has patient group(s) "
                            f"{', '.join(patients) or 'none'} (control: {cohort.control}). Choose two with "
                            f"--match A,B (for example a patient group and the controls)")
    return patients[0], patients[1]


def match_groups(cohort: Cohort, groups: Sequence[str] | None = None,
                 covariates: Sequence[str] = DEFAULT_COVARIATES, ratio: int = 1, caliper: float | None = None,
                 replace: bool = False, exact: Sequence[str] = (), m_order: str = "data",
                 seed: int | None = 20240101, analysis: str = "psm") -> Matching:
    """Nearest-neighbour propensity-score matching of group A to group B with R's MatchIt.

    Parameters
    ----------
    groups : (A, B): A is matched to B (A is MatchIt's treated group). Default: the first two
        patient groups. Any two groups of the cohort work, controls included.
    covariates : cohort columns of the propensity model (logistic regression, ``distance = "glm"``).
    ratio : controls per treated subject (``ratio``).
    caliper : in standard deviations of the propensity score (MatchIt's ``caliper`` with
        ``std.caliper = TRUE``); None for no caliper.
    replace : match with replacement.
    exact : columns to match exactly on (``exact``).
    m_order : ``data`` (the cohort's order), ``largest``, ``smallest`` or ``random`` (``m.order``).
    seed : R's ``set.seed`` before matching (matters for ``m_order="random"`` and ties).
    analysis : the tidy name (``psm``; ``psm_sd`` for the Supplementary-Table-4 variant).
    """
    from bagkit import rbridge

    groups = tuple(str(g) for g in groups) if groups is not None else _default_groups(cohort)
    if len(groups) != 2 or groups[0] == groups[1]:
        raise AnalysisError(f"matching needs two different groups, got {', '.join(groups) or 'none'}")
    absent = [g for g in groups if g not in cohort.groups]
    if absent:
        raise AnalysisError(f"matching group(s) {', '.join(repr(g) for g in absent)} not in the cohort; its "
                            f"groups are: {', '.join(cohort.groups)}")
    covariates = _check_columns(cohort, covariates, "covariate")
    if not covariates:
        raise AnalysisError("matching needs at least one covariate")
    exact = _check_columns(cohort, exact, "exact variable")
    if int(ratio) != ratio or ratio < 1:
        raise AnalysisError(f"matching ratio must be a whole number ≥ 1, got {ratio}")
    if caliper is not None and not (caliper > 0 and math.isfinite(caliper)):
        raise AnalysisError(f"matching caliper must be a positive number of propensity-score SDs, got {caliper}")
    if m_order not in M_ORDERS:
        raise AnalysisError(f"matching order must be one of {', '.join(M_ORDERS)}, got {m_order!r}")

    data = cohort.data[cohort.data["group"].isin(groups)].reset_index(drop=True)
    used = list(dict.fromkeys(covariates + exact))
    missing = data[used].isna()
    incomplete = missing.any(axis=1)
    left_out = tuple(str(i) for i in data.loc[incomplete, "subject_id"])
    left_out_columns = {str(data.at[i, "subject_id"]): tuple(c for c in used if missing.at[i, c])
                        for i in np.flatnonzero(incomplete.to_numpy())}
    left_out_groups = dict(zip(left_out, data.loc[incomplete, "group"]))
    notes: list[str] = []
    if left_out:
        shown = ", ".join(left_out[:10]) + (f" and {len(left_out) - 10} more" if len(left_out) > 10 else "")
        per_group = ", ".join(f"{g}: {list(left_out_groups.values()).count(g)}" for g in groups)
        message = (f"{len(left_out)} subject(s) left out of the matching for a missing covariate "
                   f"({per_group}): {shown}")
        notes.append(message)
        warnings.warn(message, MatchingWarning, stacklevel=2)
    data = data[~incomplete].reset_index(drop=True)
    for g in groups:
        if int((data["group"] == g).sum()) < 2:
            raise AnalysisError(f"matching: group '{g}' has fewer than 2 subjects with every covariate "
                                f"({', '.join(used)})")

    safe = {c: f"x{i}" for i, c in enumerate(covariates, start=1)}
    exact_only = [c for c in exact if c not in safe]
    safe.update({c: f"e{i}" for i, c in enumerate(exact_only, start=1)})
    frame = pd.DataFrame({"treat": (data["group"] == groups[0]).astype(int)})
    for column in used:
        frame[safe[column]] = _encode(data[column], column).to_numpy()
    for column in used:
        encoded = frame[safe[column]]
        if encoded.nunique(dropna=True) < 2:
            raise AnalysisError(f"matching covariate '{column}' takes a single value in {groups[0]} and "
                                f"{groups[1]}; leave it out")

    rbridge.require_r_packages("MatchIt")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            out = rbridge.run_r("bagkit_match", "matching.R", data=frame,
                                covariates=[safe[c] for c in covariates],
                                method="nearest", ratio=int(ratio),
                                caliper=None if caliper is None else float(caliper), replace=bool(replace),
                                exact=[safe[c] for c in exact] or None, m_order=m_order,
                                seed=None if seed is None else int(seed))
        except RBridgeError as error:
            if "No units were matched" not in str(error):
                raise
            within = " and ".join(([f"within the caliper ({caliper:g} SD of the propensity score)"]
                                   if caliper is not None else [])
                                  + ([f"with the same {', '.join(exact)}"] if exact else []))
            raise AnalysisError(f"MatchIt matched no {groups[0]} subject to a {groups[1]} subject"
                                f"{' ' + within if within else ''}: the propensity scores of the two groups may "
                                f"not overlap (the covariates {', '.join(covariates)} separate them). Widen or "
                                f"drop the caliper, or choose other covariates ({error})") from None
    r_warnings = []  # R's glm.fit warnings: folded into the separation message decided from the scores
    for warning in caught:
        if issubclass(warning.category, rbridge.RWarning) and "glm.fit:" in str(warning.message):
            r_warnings.append(warning)
            continue
        if issubclass(warning.category, rbridge.RWarning):
            notes.append(str(warning.message))
        warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)

    if bool(out.get("distance_scaled", False)):
        notes.append(f"MatchIt {out.get('version', '')} on this system truncates propensity-score differences "
                     f"to integers (MatchIt issue #163, fixed in 4.5.4), which breaks nearest-neighbour choice "
                     f"and calipers; bagkit gave MatchIt its own glm propensity score scaled by 1e9, which "
                     f"restores both (see r/matching.R)")
    unsafe = {v: k for k, v in safe.items()}
    subjects_r = out["subjects"]
    rows = subjects_r["row"].to_numpy(dtype=int) - 1
    weights = subjects_r["weight"].to_numpy(dtype=float)
    pair = pd.to_numeric(pd.Series(subjects_r["subclass"]).replace({"NA": None}), errors="coerce")
    subjects = pd.DataFrame({
        "subject_id": data["subject_id"].to_numpy()[rows].astype(str),
        "group": data["group"].to_numpy()[rows],
        "treated": subjects_r["treat"].to_numpy(dtype=int) == 1,
        "distance": subjects_r["distance"].to_numpy(dtype=float),
        "weight": weights,
        "pair": pair.to_numpy(dtype=float),
        "matched": weights > 0,
        "discarded": subjects_r["discarded"].to_numpy(dtype=bool),
    })
    ids = data["subject_id"].astype(str).to_numpy()
    pairs_r = out["pairs"]
    pairs = pd.DataFrame({
        "treated_id": ids[np.asarray(pairs_r["treated_row"], dtype=int) - 1],
        "control_id": ids[np.asarray(pairs_r["control_row"], dtype=int) - 1],
        "slot": np.asarray(pairs_r["slot"], dtype=int),
    })
    _check_matchit_invariants(subjects, pairs, data, exact, replace, out.get("caliper_width"),
                              str(out.get("version", "")))
    separation = _separation(subjects, groups, covariates)
    if separation is not None:
        notes.append(separation)
        warnings.warn(separation, MatchingWarning, stacklevel=2)
    elif r_warnings:  # glm warned but the scores overlap and none is 0 or 1: pass R's words on
        for warning in r_warnings:
            notes.append(str(warning.message))
            warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)
    balance = _balance(out, unsafe, cohort)
    counts = out["nn"].copy()
    counts.index = [_SAMPLES.get(s, s) for s in counts["sample"]]
    counts = counts.rename(columns={"treated": groups[0], "control": groups[1]})[[groups[0], groups[1]]]

    matched = data[subjects["matched"].to_numpy()]
    matched_cohort = Cohort(matched.reset_index(drop=True), None, groups, cohort.labels, cohort.source,
                            cohort.notes)
    options = {"method": "nearest", "distance": "glm", "ratio": int(ratio), "caliper": caliper,
               "replace": bool(replace), "exact": exact, "m_order": m_order, "seed": seed}
    result = Matching(groups, covariates, options, subjects, pairs, balance, counts, left_out, left_out_columns,
                      left_out_groups, matched_cohort, dict(cohort.labels), tuple(notes), analysis, str(out.get("version", "")),
                      {k: float(out[k]) for k in ("seconds_matchit", "seconds_summary") if k in out})
    if not result.balanced:
        message = (f"balance not reached after matching: |SMD| ≥ {SMD_THRESHOLD} for "
                   f"{', '.join(result.imbalanced_terms)}")
        result = _with_notes(result, message)
    return result


#: a propensity score this close to 0 or 1 is, for the logistic model, certainty about the group
SEPARATION_TOLERANCE = 1e-8


def _separation(subjects: pd.DataFrame, groups: Sequence[str], covariates: Sequence[str]) -> str | None:
    """Say, in words, when the propensity model separates the groups (decided from the scores, not
    from R's warning text): no overlap at all, or some subjects scored (numerically) 0 or 1. Then R's
    glm does not converge ("glm.fit: algorithm did not converge", "fitted probabilities numerically 0
    or 1 occurred") and matching cannot make the groups comparable."""
    score = subjects["distance"].to_numpy(dtype=float)
    treated = subjects["treated"].to_numpy(dtype=bool)
    if not treated.any() or treated.all() or not np.isfinite(score).all():
        return None
    a, b = score[treated], score[~treated]
    covariates = ", ".join(covariates)
    if a.min() > b.max() or b.min() > a.max():
        return (f"no overlap of the propensity score between {groups[0]} and {groups[1]}: the covariates "
                f"({covariates}) separate the two groups completely ({groups[0]} {a.min():.3g}–{a.max():.3g}, "
                f"{groups[1]} {b.min():.3g}–{b.max():.3g}), so the logistic propensity model cannot converge "
                f"(perfect separation) and no matched pair is comparable. Match on other or fewer covariates, or "
                f"report that the groups do not overlap")
    extreme = (score < SEPARATION_TOLERANCE) | (score > 1 - SEPARATION_TOLERANCE)
    if extreme.any():
        return (f"{int(extreme.sum())} subject(s) have a propensity score of (numerically) 0 or 1: the "
                f"covariates ({covariates}) separate them from the other group (quasi-separation: the logistic "
                f"propensity model cannot converge for them), so they have no comparable partner. Consider a caliper "
                f"(--caliper) or other covariates")
    return None


def _check_matchit_invariants(subjects: pd.DataFrame, pairs: pd.DataFrame, data: pd.DataFrame,
                              exact: Sequence[str], replace: bool, caliper_width, version: str) -> None:
    """Refuse a matching that breaks the rules it was asked for (caliper, exact, replacement).

    MatchIt 4.5.1–4.5.3 ignores the caliper on some systems (MatchIt issue #163, fixed in 4.5.4) and
    4.5.1 has bugs with ratio > 1 combined with ``exact`` or ``replace`` (fixed in 4.5.2/4.5.3): a
    result that silently breaks the caliper or the exact strata must not reach a table.
    """
    if pairs.empty:
        return
    hint = (f"This is a known bug of MatchIt {version or '(this version)'} (MatchIt issues #163/#159, "
            f"fixed in MatchIt 4.5.4); upgrade MatchIt (install.packages(\"MatchIt\") from CRAN) or "
            f"match without this option.")
    distance = dict(zip(subjects["subject_id"], subjects["distance"]))
    gaps = np.abs(pairs["treated_id"].map(distance).to_numpy() - pairs["control_id"].map(distance).to_numpy())
    if caliper_width is not None and np.isfinite(caliper_width):
        outside = gaps > float(caliper_width) * (1 + 1e-9) + 2e-9  # 2e-9: r/matching.R's 1e9 scaling
        if outside.any():
            raise AnalysisError(f"MatchIt did not apply the caliper: {int(outside.sum())} of {len(gaps)} matched "
                                f"pairs lie further apart on the propensity score ({gaps.max():.4g}) than the "
                                f"caliper ({float(caliper_width):.4g}). {hint}")
    if exact:
        values = data.set_index(data["subject_id"].astype(str))[list(exact)]
        treated = values.loc[pairs["treated_id"]].to_numpy()
        control = values.loc[pairs["control_id"]].to_numpy()
        if not (treated == control).all():
            raise AnalysisError(f"MatchIt paired subjects that differ on the exact variable(s) "
                                f"{', '.join(exact)}. {hint}")
    if pairs.duplicated(["treated_id", "control_id"]).any():
        raise AnalysisError(f"MatchIt matched a control to the same treated subject twice. {hint}")
    if not replace and pairs["control_id"].duplicated().any():
        raise AnalysisError(f"MatchIt used a control twice although matching was without replacement. {hint}")


def _with_notes(matching: Matching, *notes: str) -> Matching:
    from dataclasses import replace as _replace
    return _replace(matching, notes=tuple(matching.notes) + tuple(notes))


def _balance(out: Mapping[str, Any], unsafe: Mapping[str, str], cohort: Cohort) -> pd.DataFrame:
    terms = out["terms"].copy()
    terms["level"] = terms["level"].where(terms["level"].astype(str) != "NA", None)
    before = out["sum_all"].set_index("term")
    after = out["sum_matched"].set_index("term")
    unknown = [term for term in before.index if term not in set(terms["term"])]
    if unknown:
        raise AnalysisError(f"MatchIt's balance table has row(s) bagkit cannot name: {', '.join(unknown)}")
    terms = terms.set_index("term").loc[list(before.index)].reset_index()
    rows = []
    for _, t in terms.iterrows():
        covariate = "distance" if t["variable"] == "distance" else unsafe[t["variable"]]
        level = t["level"] if isinstance(t["level"], str) else None
        term = covariate if level is None else f"{covariate}={level}"
        if covariate == "distance":
            label = "Propensity score"
        elif covariate == "sex" and level is None:
            label = "Sex (male)"
        else:
            label = cohort.label(covariate) + (f": {level}" if level is not None else "")
        row = {"term": term, "covariate": covariate, "level": level, "label": label}
        for statistic in _STATISTICS_BEFORE:
            row[f"{statistic}_before"] = float(before.at[t["term"], statistic]) if statistic in before else np.nan
        for statistic in _STATISTICS_AFTER:
            row[f"{statistic}_after"] = float(after.at[t["term"], statistic]) if statistic in after else np.nan
        rows.append(row)
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------------------------
# Table 2: the matched groups compared as Table 1 compares groups.
# ---------------------------------------------------------------------------------------------
