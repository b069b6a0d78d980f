#!/usr/bin/env python3
"""Make bagkit's bundled example cohort: a seeded, entirely synthetic cohort that mirrors the paper.

    python examples/make_example_cohort.py                 # writes examples/cohort.csv, examples/visits.csv
    python examples/make_example_cohort.py --seed 7 --out-dir /tmp/cohort

The cohort has the paper's design (199 NMOSD, 200 RRMS, 269 healthy controls from six centers;
follow-up EDSS visits for 85 NMOSD and 124 RRMS patients) and reproduces the descriptive
statistics of its Table 1 and the associations its Results report (BAG with EDSS and normalized
brain volume, with brain lesions, with center; BAG predicting EDSS worsening), so that every
analysis bagkit runs on it has something real to find. No value in it belongs to a real person.

How it is made (numpy and pandas only):

* Each group draws a latent multivariate normal (age, EDSS, nbv, lesion load, onset-to-diagnosis,
  BAG) with a chosen correlation matrix. Every variable's values are drawn from its own target
  distribution by stratified quantiles (one value per 1/n slice of probability, so the sample
  has the target's shape almost exactly) and handed to subjects by the rank of their latent
  value (a Gaussian copula). Means, SDs and ranges therefore match the paper's Table 1 closely,
  and the correlations come from the latent matrix.
* Counts (N, female, DMT, AQP4, follow-up, worsening) are exact: they are assigned, not sampled.
* EDSS worsening follows a proportional-hazards model (BAG raises the hazard; baseline EDSS and
  normalized brain volume lower it). The baseline hazard is chosen so that exactly the paper's
  number of patients worsen; the visits table is then written so that the paper's rule (a rise
  ≥ 1.0 over a baseline ≤ 5.5, ≥ 0.5 over a baseline > 5.5) finds exactly those events at the
  visit following the event time, and nobody else (non-events fluctuate by at most +0.5, or not
  upward at all when baseline > 5.5). The generator checks this by applying the rule itself.

``make_cohort(seed=..., n_per_group=...)`` builds larger cohorts (e.g. 100 000 subjects for the
benchmarks); counts then scale with the group sizes (e.g. 85/199 of NMOSD patients have follow-up).
"""
from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np
import pandas as pd

DEFAULT_SEED = 20240611
DEFAULT_N = {"NMOSD": 199, "RRMS": 200, "HC": 269}
PATIENTS = ("NMOSD", "RRMS")
CONTROL = "HC"
CENTERS = ("C1", "C2", "C3", "C4", "C5", "C6")

COHORT_COLUMNS = ["subject_id", "group", "center", "age", "sex", "age_at_diagnosis", "disease_duration",
                  "edss", "dmt", "aqp4", "brain_volume_ml", "icv_ml", "nbv", "lesion_volume_ml",
                  "brain_age", "brain_age_sd", "brain_age_filled"]
VISIT_COLUMNS = ["subject_id", "years", "edss"]

# ---------------------------------------------------------------------------------------------
# The paper's numbers (Table 1 and Results). (mean, sd, min, max) unless named otherwise.
# ---------------------------------------------------------------------------------------------
TARGETS = {
    "NMOSD": dict(
        n=199, female=176, dmt=52, aqp4_tested=132, aqp4_pos=84, followup_n=85, events=31,
        age=(41.0, 13.0, 16.9, 66.0), disease_duration=(4.5, 5.1, 0.0, 35.0),
        edss_quartiles=(1.0, 2.0, 3.0), edss_median=2.0, edss_iqr=2.0,
        brain_volume_ml=(1058.9, 94.4, 798.7, 1390.1), nbv=(0.750, 0.038, 0.647, 0.891),
        lesion_volume_ml=(4.9, 8.1, 0.0, 43.9), brain_age=(46.4, 16.0, 18.8, 77.5), bag=(5.4, 8.2),
        brain_age_sd=(6.0, 3.0), followup_years=(5.8, 1.9, 1.9, 9.9),
        r_bag_edss=0.217, r_bag_nbv=-0.202, auc=0.599, cutoff_spec80=6.1,
    ),
    "RRMS": dict(
        n=200, female=128, dmt=86, followup_n=124, events=42,
        age=(37.1, 11.4, 16.6, 66.9), disease_duration=(3.2, 4.4, 0.0, 21.0),
        edss_quartiles=(2.0, 3.5, 5.0), edss_median=3.5, edss_iqr=3.0,
        brain_volume_ml=(1080.1, 121.5, 742.6, 1484.5), nbv=(0.731, 0.045, 0.590, 0.858),
        lesion_volume_ml=(12.7, 17.9, 0.0, 134.0), brain_age=(49.8, 17.5, 19.5, 77.8), bag=(13.0, 14.7),
        brain_age_sd=(7.2, 4.2), followup_years=(5.2, 1.7, 1.5, 9.2),
        r_bag_edss=0.268, r_bag_nbv=-0.384, auc=0.670, cutoff_spec80=24.0,
    ),
    "HC": dict(
        n=269, female=152,
        age=(38.5, 12.7, 17.0, 69.0), brain_volume_ml=(1154.6, 98.5, 910.7, 1434.0),
        nbv=(0.765, 0.030, 0.700, 0.894), brain_age=(39.3, 13.7, 14.8, 73.8), bag=(0.8, 6.2),
        brain_age_sd=(4.8, 1.1),
    ),
}
# Raw minus lesion-filled brain age (Supplementary Figure 3): mean 0.28, SD 2.11; R² = 0.984.
FILLED_DIFF = (0.28, 2.11)
# NMOSD BAG with vs without brain lesions (7.1±8.5 vs 3.4±7.2): 2.0/3.7 of patients have lesions.
NMOSD_LESION_FREE = 1.0 - (5.4 - 3.4) / (7.1 - 3.4)
RRMS_LESION_FREE = 0.03

# ---------------------------------------------------------------------------------------------
# Model parameters (chosen, then checked against the targets: see the summary the script prints).
# ---------------------------------------------------------------------------------------------
# EDSS distributions on the EDSS scale (0, 1.0, 1.5, ... 9.0): probability per step, shaped so
# that the quartiles are the paper's with a margin (every quantile rule gives the same values).
EDSS_LEVELS = np.array([0.0, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0, 5.5, 6.0, 6.5, 7.0, 7.5, 8.0,
                        8.5, 9.0])
EDSS_PMF = {
    #            0     1.0   1.5   2.0   2.5   3.0   3.5   4.0   4.5   5.0   5.5   6.0   6.5   7.0   7.5   8.0   8.5   9.0
    "NMOSD": [0.13, 0.19, 0.10, 0.16, 0.08, 0.12, 0.05, 0.05, 0.03, 0.02, 0.015, 0.015, 0.01, 0.01, 0.008, 0.007,
              0.004, 0.008],
    "RRMS": [0.05, 0.07, 0.08, 0.12, 0.08, 0.07, 0.08, 0.07, 0.06, 0.10, 0.05, 0.06, 0.04, 0.03, 0.015, 0.01,
             0.008, 0.007],
}
# Latent correlations, order: age, edss, nbv, lesion, disease_duration, bag, brain_age_sd noise.
LATENT = ("age", "edss", "nbv", "lesion", "duration", "bag")
LATENT_R = {
    "NMOSD": {("age", "edss"): 0.25, ("age", "nbv"): -0.45, ("age", "lesion"): 0.15, ("age", "duration"): 0.20,
              ("age", "bag"): 0.40, ("edss", "nbv"): -0.40, ("edss", "lesion"): 0.15, ("edss", "duration"): 0.10,
              ("edss", "bag"): 0.30, ("nbv", "lesion"): -0.20, ("nbv", "duration"): -0.05, ("nbv", "bag"): -0.28,
              ("lesion", "bag"): 0.30, ("duration", "bag"): 0.0},
    "RRMS": {("age", "edss"): 0.30, ("age", "nbv"): -0.45, ("age", "lesion"): 0.10, ("age", "duration"): 0.25,
             ("age", "bag"): 0.25, ("edss", "nbv"): -0.50, ("edss", "lesion"): 0.30, ("edss", "duration"): 0.15,
             ("edss", "bag"): 0.34, ("nbv", "lesion"): -0.35, ("nbv", "duration"): -0.10, ("nbv", "bag"): -0.48,
             ("lesion", "bag"): 0.30, ("duration", "bag"): 0.20},
    "HC": {("age", "nbv"): -0.50, ("age", "bag"): -0.05, ("nbv", "bag"): -0.15},
}
# Correlation of the predicted SD's latent with BAG (Supplementary Figure 5A: positive in every group).
SD_BAG_R = {"NMOSD": 0.35, "RRMS": 0.25, "HC": 0.30}
# Center mix per group and the center shift in BAG, years (BAG differs across centers, p < 0.001).
CENTER_WEIGHTS = {
    "NMOSD": [0.26, 0.22, 0.17, 0.14, 0.12, 0.09],
    "RRMS": [0.20, 0.16, 0.22, 0.12, 0.18, 0.12],
    "HC": [0.22, 0.20, 0.16, 0.18, 0.14, 0.10],
}
CENTER_SHIFT = np.array([-2.5, -1.0, 0.0, 1.0, 2.0, 3.0])
# Intracranial volume: men larger than women by this many within-sex SDs.
ICV_SEX_EFFECT = 1.4
# Worsening hazard: log-HR per year of BAG, per EDSS point, per 0.01 of nbv (1 %).
HAZARD = {
    "NMOSD": dict(bag=0.075, edss=-0.55, nbv_pct=-0.12),
    "RRMS": dict(bag=0.035, edss=-0.15, nbv_pct=-0.07),
}
# Predicted brain age saturates smoothly over this fraction of the paper's range at either end.
BRAIN_AGE_SOFT_EDGE = 0.15
# A predicted SD no larger than this (an SFCN-style output over 6-90 y cannot spread much more).
BRAIN_AGE_SD_MAX = 25.0
# Who has follow-up: log-odds per SD of BAG (the paper's followed NMOSD patients had lower BAG:
# 80 % of those who did not worsen had BAG ≤ 6.1 y, against ≤ 24 y in RRMS).
FOLLOWUP_BAG_SELECTION = {"NMOSD": -0.75, "RRMS": 0.2}
# Time from diagnosis to the baseline scan, years (exponential, capped); onset no earlier than this age.
DIAGNOSIS_TO_SCAN_MEAN = 0.8
DIAGNOSIS_TO_SCAN_MAX = 4.0
MIN_ONSET_AGE = 8.0


# ---------------------------------------------------------------------------------------------
# Distributions by stratified quantiles (numpy only).
# ---------------------------------------------------------------------------------------------
def _norm_ppf(p):
    """Inverse standard normal CDF (Acklam's rational approximation, |relative error| < 1.2e-9)."""
    p = np.asarray(p, dtype=float)
    a = [-3.969683028665376e+01, 2.209460984245205e+02, -2.759285104469687e+02, 1.383577518672690e+02,
         -3.066479806614716e+01, 2.506628277459239e+00]
    b = [-5.447609879822406e+01, 1.615858368580409e+02, -1.556989798598866e+02, 6.680131188771972e+01,
         -1.328068155288572e+01]
    c = [-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e+00, -2.549732539343734e+00,
         4.374664141464968e+00, 2.938163982698783e+00]
    d = [7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00, 3.754408661907416e+00]
    low, high = 0.02425, 1 - 0.02425
    out = np.empty_like(p)
    lo = p < low
    hi = p > high
    mid = ~(lo | hi)
    q = np.sqrt(-2 * np.log(p[lo]))
    out[lo] = (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) / \
              ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1)
    q = np.sqrt(-2 * np.log(1 - p[hi]))
    out[hi] = -(((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) / \
        ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1)
    q = p[mid] - 0.5
    r = q * q
    out[mid] = (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q / \
               (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1)
    return out


def _strata(rng, n):
    """n sorted uniforms, one in each 1/n slice of (0, 1)."""
    return (np.arange(n) + rng.uniform(0.05, 0.95, n)) / n


def _beta_values(rng, n, mean, sd, low, high):
    """n sorted values of the beta distribution on [low, high] with this mean and SD; the extremes
    are set to low and high (the paper's min and max)."""
    mu = (mean - low) / (high - low)
    var = (sd / (high - low)) ** 2
    k = mu * (1 - mu) / var - 1
    a, b = mu * k, (1 - mu) * k
    x = np.linspace(0, 1, 20001)
    with np.errstate(divide="ignore"):
        logpdf = (a - 1) * np.log(x) + (b - 1) * np.log1p(-x)
    pdf = np.exp(logpdf - np.max(logpdf[np.isfinite(logpdf)]))
    pdf[~np.isfinite(pdf)] = 0
    cdf = np.concatenate([[0], np.cumsum((pdf[1:] + pdf[:-1]) / 2)])
    cdf /= cdf[-1]
    values = low + (high - low) * np.interp(_strata(rng, n), cdf, x)
    if n >= 2:
        values[0], values[-1] = low, high
    return values


def _weibull_shape(cv):
    """Weibull shape whose coefficient of variation is cv."""
    lo, hi = 0.2, 5.0
    for _ in range(100):
        k = (lo + hi) / 2
        g1, g2 = math.gamma(1 + 1 / k), math.gamma(1 + 2 / k)
        if math.sqrt(g2 / g1 ** 2 - 1) > cv:
            lo = k
        else:
            hi = k
    return (lo + hi) / 2


def _skewed_values(rng, n, mean, sd, high):
    """n sorted non-negative, right-skewed values (Weibull, truncated at high) with this mean (exact)
    and about this SD; the largest is set to high."""
    k = _weibull_shape(sd / mean)
    for _ in range(30):  # widen the shape a little until the truncated SD is the target's
        scale = mean / math.gamma(1 + 1 / k)
        f_high = 1 - math.exp(-(high / scale) ** k)
        values = scale * (-np.log1p(-_strata(np.random.default_rng(0), n) * f_high)) ** (1 / k)
        values *= mean / values.mean()
        if values.std(ddof=1) >= 0.97 * sd or k < 0.3:
            break
        k *= 0.97
    scale = mean / math.gamma(1 + 1 / k)
    f_high = 1 - math.exp(-(high / scale) ** k)
    values = scale * (-np.log1p(-_strata(rng, n) * f_high)) ** (1 / k)
    values = np.minimum(values * mean / values.mean(), high)
    if n >= 2:
        values[-1] = high
    return np.sort(values)


def _lognormal_shape(n, mean, sd, high):
    """Lognormal sigma whose sample of n stratified values, scaled to this mean and capped at
    high, has this SD (the cap takes some spread off the tail, so sigma is widened to match)."""
    u = (np.arange(n) + 0.5) / n

    def spread(sigma):
        values = np.exp(sigma * _norm_ppf(u))
        for _ in range(20):
            values = np.minimum(values * mean / values.mean(), high)
        return values.std(ddof=1)

    lo, hi = 0.01, 3.0
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if spread(mid) < sd else (lo, mid)
    return (lo + hi) / 2


def _lognormal_values(rng, n, mean, sd, high=np.inf, force_max=False):
    """n sorted lognormal values with this mean (exact) and SD, capped at high (the largest set
    to high when force_max)."""
    sigma = _lognormal_shape(min(n, 5000), mean, sd, high)
    values = np.sort(np.exp(sigma * _norm_ppf(_strata(rng, n))))
    for _ in range(20):
        values = np.minimum(values * mean / values.mean(), high)
    if force_max and n >= 2:
        values[-1] = high
        values[:-1] *= (mean * n - high) / values[:-1].sum()
    return values


def _discrete_values(n, levels, pmf):
    """n sorted values with counts proportional to pmf (largest remainder), at least one of the
    lowest and highest level."""
    pmf = np.asarray(pmf, dtype=float) / np.sum(pmf)
    raw = pmf * n
    counts = np.floor(raw).astype(int)
    order = np.argsort(-(raw - counts), kind="stable")
    counts[order[: n - counts.sum()]] += 1
    if n >= 4:
        for end in (0, -1):
            if counts[end] == 0:
                counts[end] = 1
                counts[np.argmax(counts)] -= 1
    return np.repeat(levels, counts)


def _by_rank(sorted_values, latent):
    """Give the k-th smallest value to the subject with the k-th smallest latent value."""
    out = np.empty(len(latent))
    out[np.argsort(latent, kind="stable")] = sorted_values
    return out


def _calibrate(x, mean, sd):
    return mean + sd * (x - x.mean()) / x.std(ddof=1)


def _scaled_count(n, target_n, count):
    """A count scaled to a group size other than the paper's (exact at the paper's size)."""
    return int(round(count * n / target_n))


def _exact_ones(rng, n, k):
    out = np.zeros(n, dtype=int)
    out[rng.permutation(n)[:k]] = 1
    return out


def _soft_bounds(x, low, high):
    """Identity in the middle, approaching low and high smoothly (never reaching them)."""
    k = BRAIN_AGE_SOFT_EDGE * (high - low)
    y = np.array(x, dtype=float)
    top, bottom = y > high - k, y < low + k
    y[top] = high - k * np.exp(-(y[top] - (high - k)) / k)
    y[bottom] = low + k * np.exp((y[bottom] - (low + k)) / k)
    return y


def _bounded_bag(age, latent, mean, sd, low, high):
    """BAG with this mean and SD whose brain age (age + BAG) stays within the paper's range of
    predicted brain age (a model's predictions saturate towards its range's ends)."""
    z = (latent - latent.mean()) / latent.std(ddof=1)
    m_in, s_in = mean, sd
    for _ in range(50):
        bag = _soft_bounds(age + m_in + s_in * z, low, high) - age
        m_in += mean - bag.mean()
        s_in *= sd / bag.std(ddof=1)
    return bag


def _latent(rng, n, group):
    names = LATENT if group in PATIENTS else ("age", "nbv", "bag")
    r = np.eye(len(names))
    for (a, b), value in LATENT_R[group].items():
        i, j = names.index(a), names.index(b)
        r[i, j] = r[j, i] = value
    w, v = np.linalg.eigh(r)
    if w.min() <= 1e-6:  # nearest positive-definite matrix, unit diagonal
        r = v @ np.diag(np.maximum(w, 1e-3)) @ v.T
        s = np.sqrt(np.diag(r))
        r = r / np.outer(s, s)
    z = rng.standard_normal((n, len(names))) @ np.linalg.cholesky(r).T
    return {name: z[:, i] for i, name in enumerate(names)}


def _exact_counts(n, weights):
    raw = np.asarray(weights, dtype=float) / np.sum(weights) * n
    counts = np.floor(raw).astype(int)
    counts[np.argsort(-(raw - counts), kind="stable")[: n - counts.sum()]] += 1
    return counts


# ---------------------------------------------------------------------------------------------
# One group.
# ---------------------------------------------------------------------------------------------
def _make_group(rng, group, n):
    t = TARGETS[group]
    z = _latent(rng, n, group)
    out = {"group": np.full(n, group, dtype=object)}

    counts = _exact_counts(n, CENTER_WEIGHTS[group])
    center_idx = rng.permutation(np.repeat(np.arange(len(CENTERS)), counts))
    out["center"] = np.array(CENTERS, dtype=object)[center_idx]

    age = np.round(_by_rank(_beta_values(rng, n, *t["age"]), z["age"]), 1)
    out["age"] = age
    female = _exact_ones(rng, n, _scaled_count(n, t["n"], t["female"]))
    out["sex"] = np.where(female == 1, "F", "M").astype(object)

    # Normalized brain volume, intracranial volume (sex-dependent) and brain volume = nbv * icv,
    # with the ICV's location and spread solved so that brain volume has the target mean and SD.
    nbv = _by_rank(_beta_values(rng, n, *t["nbv"]), z["nbv"])
    w = ICV_SEX_EFFECT * (1 - female) + rng.standard_normal(n)
    m_bv, s_bv = t["brain_volume_ml"][:2]
    m1, m2 = nbv.mean(), (nbv * w).mean()
    u, v = nbv - m1, nbv * w - m2  # bv - mean = a*u + b*v, with a = (m_bv - b*m2)/m1
    # var(a u + b v) = s_bv^2 with a = (m_bv - b m2)/m1: a quadratic in b.
    uu, vv, uv = u @ u / (n - 1), v @ v / (n - 1), u @ v / (n - 1)
    c0 = m_bv / m1
    c1 = -m2 / m1
    qa = c1 * c1 * uu + vv + 2 * c1 * uv
    qb = 2 * c0 * c1 * uu + 2 * c0 * uv
    qc = c0 * c0 * uu - s_bv ** 2
    b = (-qb + math.sqrt(max(qb * qb - 4 * qa * qc, 0))) / (2 * qa)
    a = c0 + c1 * b
    icv = np.round(a + b * w, 1)
    bv = np.round(nbv * icv, 1)
    out["icv_ml"] = icv
    out["brain_volume_ml"] = bv
    out["nbv"] = np.round(bv / icv, 4)

    # BAG: latent plus a center shift, calibrated to the group's mean and SD.
    m_bag, s_bag = t["bag"]
    bag = _bounded_bag(age, z["bag"] + CENTER_SHIFT[center_idx] / s_bag, m_bag, s_bag, *t["brain_age"][2:])
    brain_age = np.round(age + bag, 1)
    out["brain_age"] = brain_age
    sd_latent = SD_BAG_R[group] * z["bag"] + math.sqrt(1 - SD_BAG_R[group] ** 2) * rng.standard_normal(n)
    out["brain_age_sd"] = np.round(_by_rank(_lognormal_values(rng, n, *t["brain_age_sd"], high=BRAIN_AGE_SD_MAX), sd_latent), 2)

    if group not in PATIENTS:
        return pd.DataFrame(out), None

    edss = _by_rank(_discrete_values(n, EDSS_LEVELS, EDSS_PMF[group]), z["edss"])
    out["edss"] = edss

    # Onset to diagnosis (skewed), and age at diagnosis a little before the baseline scan; onset
    # no earlier than MIN_ONSET_AGE (durations are swapped between subjects until that holds).
    gap = np.minimum(rng.exponential(DIAGNOSIS_TO_SCAN_MEAN, n), DIAGNOSIS_TO_SCAN_MAX)
    age_dx = np.round(np.maximum(age - gap, np.minimum(age, MIN_ONSET_AGE + 1)), 1)
    m, s, _, high = t["disease_duration"]
    duration = np.round(_by_rank(_skewed_values(rng, n, m, s, high), z["duration"]), 1)
    room = age_dx - MIN_ONSET_AGE
    for i in np.flatnonzero(duration > room):
        if duration[i] <= room[i]:
            continue
        ok = np.flatnonzero((duration <= room[i]) & (duration[i] <= room))
        if len(ok):  # swap with the longest duration that fits (the marginal is unchanged)
            j = ok[np.argmax(duration[ok])]
            duration[i], duration[j] = duration[j], duration[i]
        else:
            duration[i] = max(round(room[i], 1), 0.0)
    out["age_at_diagnosis"] = age_dx
    out["disease_duration"] = duration
    out["dmt"] = _exact_ones(rng, n, _scaled_count(n, t["n"], t["dmt"]))

    aqp4 = np.full(n, "", dtype=object)
    if "aqp4_tested" in t:
        tested = rng.permutation(n)[: _scaled_count(n, t["n"], t["aqp4_tested"])]
        n_pos = _scaled_count(n, t["n"], t["aqp4_pos"])
        aqp4[tested[:n_pos]] = "pos"
        aqp4[tested[n_pos:]] = "neg"
    out["aqp4"] = aqp4

    # Lesion load: the lowest-ranked latent values have no lesions; the rest lognormal.
    free = NMOSD_LESION_FREE if group == "NMOSD" else RRMS_LESION_FREE
    m, s, _, high = t["lesion_volume_ml"]
    n_free = int(round(free * n))
    n_les = n - n_free
    m_pos = m / (1 - free)
    s_pos = math.sqrt((s * s + m * m) / (1 - free) - m_pos ** 2)
    pos = np.clip(_lognormal_values(rng, n_les, m_pos, s_pos, high, force_max=True), 0.1, high)
    lesion = _by_rank(np.concatenate([np.zeros(n_free), np.sort(pos)]), z["lesion"])
    out["lesion_volume_ml"] = np.where(lesion > 0, np.maximum(np.round(lesion, 1), 0.1), 0.0)

    diff = _by_rank(np.sort(_calibrate(_norm_ppf(_strata(rng, n)), *FILLED_DIFF)), rng.standard_normal(n))
    out["brain_age_filled"] = np.round(brain_age - diff, 1)

    frame = pd.DataFrame(out)
    return frame, _followup(rng, group, frame)


# ---------------------------------------------------------------------------------------------
# Follow-up: who worsens (exact count, proportional hazards), and the visits that show it.
# ---------------------------------------------------------------------------------------------
def _followup(rng, group, frame):
    t = TARGETS[group]
    n = len(frame)
    n_fu = _scaled_count(n, t["n"], t["followup_n"])
    n_ev = _scaled_count(n, t["n"], t["events"])
    bag_all = (frame["brain_age"] - frame["age"]).to_numpy()
    logit = FOLLOWUP_BAG_SELECTION[group] * (bag_all - bag_all.mean()) / bag_all.std()
    idx = np.sort(np.argsort(-(logit + rng.gumbel(size=n)), kind="stable")[:n_fu])  # weighted, no replacement
    fu = np.round(rng.permutation(_beta_values(rng, n_fu, *t["followup_years"])), 2)
    sub = frame.iloc[idx]
    bag = (sub["brain_age"] - sub["age"]).to_numpy()
    edss = sub["edss"].to_numpy(dtype=float)
    nbv = sub["nbv"].to_numpy(dtype=float)
    h = HAZARD[group]
    lp = h["bag"] * (bag - bag.mean()) + h["edss"] * (edss - edss.mean()) + h["nbv_pct"] * 100 * (nbv - nbv.mean())
    e = rng.exponential(1.0, n_fu)  # T = e / (lam * exp(lp)); event when T <= fu, i.e. lam >= c
    c = e / (np.exp(lp) * fu)
    c[edss >= 9.0] = np.inf  # no room above 9.0 on this scale's visits (kept ≤ 9.5)
    order = np.argsort(c, kind="stable")
    lam = math.sqrt(c[order[n_ev - 1]] * c[order[n_ev]]) if n_ev < n_fu else c[order[-1]] * 2
    event = np.zeros(n_fu, dtype=bool)
    event[order[:n_ev]] = True
    t_event = np.where(event, e / (lam * np.exp(lp)), np.inf)

    rows_id, rows_t, rows_e = [], [], []
    for k in range(n_fu):
        n_vis = max(1, int(round(fu[k])))
        times = fu[k] * np.arange(1, n_vis + 1) / n_vis
        times[:-1] += rng.uniform(-0.2, 0.2, n_vis - 1) * min(1.0, fu[k] / n_vis)
        times = np.round(times, 2)
        times[-1] = fu[k]
        times = np.maximum.accumulate(np.maximum(times, 0.1))
        base = edss[k]
        up = 0.5 if base <= 5.5 else 0.0  # largest rise that is not worsening
        steps = rng.choice([-0.5, 0.0, 0.5], size=n_vis, p=[0.2, 0.6, 0.2])
        values = base + np.minimum(steps, up)
        if event[k]:
            j = int(np.searchsorted(times, t_event[k] - 1e-9))  # first visit at or after the event
            need = 1.0 if base <= 5.5 else 0.5
            rise = need + rng.choice([0.0, 0.5, 1.0], p=[0.6, 0.25, 0.15])
            worse = min(base + rise, 9.5)
            values[j] = worse
            after = worse + rng.choice([0.0, 0.5], size=n_vis - j - 1, p=[0.7, 0.3])
            values[j + 1:] = np.minimum(np.maximum.accumulate(after) if len(after) else after, 9.5)
        values = np.clip(values, 0.0, 9.5)
        values[values == 0.5] = 0.0 if base == 0 else 1.0  # EDSS has no 0.5 step
        rows_id.append(np.full(n_vis, idx[k]))
        rows_t.append(times)
        rows_e.append(values)
    visits = pd.DataFrame({"row": np.concatenate(rows_id), "years": np.concatenate(rows_t),
                           "edss": np.concatenate(rows_e)})
    return visits


# ---------------------------------------------------------------------------------------------
# The paper's worsening rule, and the cohort.
# ---------------------------------------------------------------------------------------------
def derive_worsening(cohort, visits):
    """Apply the paper's rule to a visits table: worsening is the first visit whose EDSS rises
    ≥ 1.0 over a baseline ≤ 5.5 (≥ 0.5 over a baseline > 5.5), at that visit's time; otherwise
    censored at the last visit. Returns subject_id, group, followup_years, worsening."""
    base = cohort.set_index("subject_id")["edss"]
    v = visits[visits["years"] > 0].sort_values(["subject_id", "years"], kind="mergesort")
    b = v["subject_id"].map(base).to_numpy(dtype=float)
    need = np.where(b <= 5.5, 1.0, 0.5)
    hit = v["edss"].to_numpy() - b >= need - 1e-9
    last = v.groupby("subject_id", sort=True)["years"].max()
    first = v[hit].groupby("subject_id", sort=True)["years"].min()
    out = pd.DataFrame({"subject_id": last.index, "followup_years": last.to_numpy(), "worsening": 0})
    out = out.set_index("subject_id")
    out.loc[first.index, "followup_years"] = first
    out.loc[first.index, "worsening"] = 1
    out["group"] = cohort.set_index("subject_id").loc[out.index, "group"]
    return out.reset_index()


def make_cohort(seed: int = DEFAULT_SEED, n_per_group: dict[str, int] | None = None
                ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Build the synthetic cohort and its visits table.

    Parameters
    ----------
    seed : the random seed (``DEFAULT_SEED`` gives the bundled ``examples/*.csv``).
    n_per_group : group sizes, e.g. ``{"NMOSD": 30000, "RRMS": 30000, "HC": 40000}``; missing
        groups keep the paper's size (199 NMOSD, 200 RRMS, 269 HC). Counts scale with the size.

    Returns
    -------
    (cohort, visits) : DataFrames with the columns ``COHORT_COLUMNS`` (empty cells as NaN, or ""
    for ``aqp4``; ``dmt`` as nullable Int64) and ``VISIT_COLUMNS``.
    """
    sizes = dict(DEFAULT_N)
    if n_per_group:
        unknown = set(n_per_group) - set(sizes)
        if unknown:
            raise ValueError(f"unknown group(s) {sorted(unknown)}; groups are {list(sizes)}")
        sizes.update({g: int(k) for g, k in n_per_group.items()})
    rng = np.random.default_rng(seed)
    frames, visits = [], []
    offset = 0
    for group in ("NMOSD", "RRMS", "HC"):
        frame, vis = _make_group(rng, group, sizes[group])
        frame.index = np.arange(offset, offset + len(frame))
        if vis is not None:
            vis["row"] += offset
            visits.append(vis)
        frames.append(frame)
        offset += len(frame)
    cohort = pd.concat(frames)
    # Subjects in random order (groups interleaved), numbered sub-0001, sub-0002, ...
    order = rng.permutation(len(cohort))
    width = max(4, len(str(len(cohort))))
    ids = np.empty(len(cohort), dtype=object)
    ids[order] = [f"sub-{i + 1:0{width}d}" for i in range(len(cohort))]
    cohort["subject_id"] = ids
    cohort = cohort.iloc[order]  # row order[i] is sub-(i + 1)
    cohort["dmt"] = cohort["dmt"].astype("Int64")
    cohort["aqp4"] = cohort["aqp4"].fillna("")
    cohort = cohort[COHORT_COLUMNS].reset_index(drop=True)
    visits = pd.concat(visits)
    visits["subject_id"] = ids[visits["row"].to_numpy()]
    visits = visits.sort_values(["subject_id", "years"], kind="mergesort")[VISIT_COLUMNS].reset_index(drop=True)
    check_counts(cohort, visits)  # the paper's rule, applied to the visits, finds exactly the events
    return cohort, visits


def write_cohort(cohort, visits, out_dir):
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for frame, name in ((cohort, "cohort.csv"), (visits, "visits.csv")):
        target = out_dir / name
        partial = target.with_name(f".{name}.partial")
        frame.to_csv(partial, index=False, lineterminator="\n")
        partial.replace(target)  # atomic: a reader never sees half a file
        written.append(target)
    return tuple(written)


# ---------------------------------------------------------------------------------------------
# Summary: target (paper) vs achieved.
# ---------------------------------------------------------------------------------------------
def _auc(score, label):
    score, label = np.asarray(score, float), np.asarray(label, bool)
    ranks = pd.Series(score).rank().to_numpy()
    n1, n0 = label.sum(), (~label).sum()
    return (ranks[label].sum() - n1 * (n1 + 1) / 2) / (n1 * n0)


def _spec80_cutoff(score, label):
    """Smallest cutoff (BAG > cutoff is positive) with specificity ≥ 80%, and its sensitivity."""
    score, label = np.asarray(score, float), np.asarray(label, bool)
    for cut in np.sort(np.unique(score)):
        spec = np.mean(score[~label] <= cut)
        if spec >= 0.8:
            return cut, np.mean(score[label] > cut), spec
    return np.nan, np.nan, np.nan


def summarize(cohort, visits):
    """Target vs achieved, one row per statistic and group, as a DataFrame."""
    rows = []
    wors = derive_worsening(cohort, visits)

    def add(stat, group, target, achieved):
        rows.append((stat, group, target, achieved))

    def msd(x, digits=1):
        x = pd.Series(x).dropna()
        return f"{x.mean():.{digits}f}±{x.std():.{digits}f} [{x.min():.{digits}f}-{x.max():.{digits}f}]"

    def tmsd(v, digits=1):
        if len(v) == 4:
            return f"{v[0]:.{digits}f}±{v[1]:.{digits}f} [{v[2]:.{digits}f}-{v[3]:.{digits}f}]"
        return f"{v[0]:.{digits}f}±{v[1]:.{digits}f}"

    for g in ("NMOSD", "RRMS", "HC"):
        t = TARGETS[g]
        d = cohort[cohort["group"] == g]
        n = len(d)
        bag = d["brain_age"] - d["age"]
        add("N", g, str(t["n"]), str(n))
        add("Age, yr", g, tmsd(t["age"]), msd(d["age"]))
        add("Female", g, f"{t['female']}/{t['n']}", f"{(d['sex'] == 'F').sum()}/{n}")
        if g in PATIENTS:
            if "aqp4_tested" in t:
                add("AQP4 pos/tested", g, f"{t['aqp4_pos']}/{t['aqp4_tested']}",
                    f"{(d['aqp4'] == 'pos').sum()}/{d['aqp4'].isin(['pos', 'neg']).sum()}")
            add("Onset to diagnosis, yr", g, tmsd(t["disease_duration"]), msd(d["disease_duration"]))
            add("DMT", g, f"{t['dmt']}/{t['n']}", f"{int(d['dmt'].sum())}/{n}")
            q1, q2, q3 = np.percentile(d["edss"], [25, 50, 75])
            add("EDSS median (IQR) [min-max]", g,
                f"{t['edss_median']:.1f} ({t['edss_iqr']:.1f}) [0.0-9.0]",
                f"{q2:.1f} ({q3 - q1:.1f}) [{d['edss'].min():.1f}-{d['edss'].max():.1f}]")
        add("Brain volume, ml", g, tmsd(t["brain_volume_ml"]), msd(d["brain_volume_ml"]))
        add("Normalized brain volume", g, tmsd(t["nbv"], 3), msd(d["nbv"], 3))
        if g in PATIENTS:
            add("Lesion volume, ml", g, tmsd(t["lesion_volume_ml"]), msd(d["lesion_volume_ml"]))
        add("Predicted brain age, yr", g, tmsd(t["brain_age"]), msd(d["brain_age"]))
        add("BAG, yr", g, tmsd(t["bag"]), msd(bag))
        add("Predicted brain age SD, yr", g, tmsd(t["brain_age_sd"]), msd(d["brain_age_sd"]))
        add("r(BAG, predicted SD)", g, "> 0", f"{np.corrcoef(bag, d['brain_age_sd'])[0, 1]:.3f}")
        if g in PATIENTS:
            add("r(BAG, EDSS)", g, f"{t['r_bag_edss']:.3f}", f"{np.corrcoef(bag, d['edss'])[0, 1]:.3f}")
            add("r(BAG, nbv)", g, f"{t['r_bag_nbv']:.3f}", f"{np.corrcoef(bag, d['nbv'])[0, 1]:.3f}")
            w = wors[wors["group"] == g].set_index("subject_id")
            add("N with follow-up", g, str(t["followup_n"]), str(len(w)))
            last = visits.groupby("subject_id")["years"].max().loc[w.index]
            add("Follow-up time, yr", g, tmsd(t["followup_years"]), msd(last))
            add("EDSS worsening (paper's rule)", g, str(t["events"]), str(int(w["worsening"].sum())))
            b = (d.set_index("subject_id")["brain_age"] - d.set_index("subject_id")["age"]).loc[w.index]
            add("AUC of BAG for worsening", g, f"{t['auc']:.3f}", f"{_auc(b, w['worsening'] == 1):.3f}")
            cut, sens, spec = _spec80_cutoff(b, w["worsening"] == 1)
            add("BAG cutoff, specificity ≥ 80%", g, f"{t['cutoff_spec80']:.1f}",
                f"{cut:.1f} (sens {sens:.0%}, spec {spec:.0%})")
    nm = cohort[cohort["group"] == "NMOSD"]
    nbag = nm["brain_age"] - nm["age"]
    les = nm["lesion_volume_ml"] > 0
    add("BAG with / without lesions", "NMOSD", "7.1±8.5 / 3.4±7.2",
        f"{nbag[les].mean():.1f}±{nbag[les].std():.1f} / {nbag[~les].mean():.1f}±{nbag[~les].std():.1f}")
    add("BAG AQP4 pos / neg", "NMOSD", "5.8±8.8 / 4.2±6.9",
        f"{nbag[nm['aqp4'] == 'pos'].mean():.1f}±{nbag[nm['aqp4'] == 'pos'].std():.1f} / "
        f"{nbag[nm['aqp4'] == 'neg'].mean():.1f}±{nbag[nm['aqp4'] == 'neg'].std():.1f}")
    pt = cohort[cohort["group"].isin(PATIENTS)]
    diff = pt["brain_age"] - pt["brain_age_filled"]
    r2 = np.corrcoef(pt["brain_age"], pt["brain_age_filled"])[0, 1] ** 2
    add("Raw - filled brain age (R²)", "patients", "0.28±2.11 (0.984)",
        f"{diff.mean():.2f}±{diff.std():.2f} ({r2:.3f})")
    allbag = cohort["brain_age"] - cohort["age"]
    means = allbag.groupby(cohort["center"]).mean()
    add("Mean BAG by center", "all", "differs (p<0.001)", " ".join(f"{c}:{v:.1f}" for c, v in means.items()))
    return pd.DataFrame(rows, columns=["statistic", "group", "target (paper)", "achieved"])


def check_counts(cohort, visits):
    """Raise if an exact count differs from the paper's (at the paper's group sizes)."""
    wors = derive_worsening(cohort, visits)
    problems = []
    for g in PATIENTS + (CONTROL,):
        t = TARGETS[g]
        d = cohort[cohort["group"] == g]
        n = len(d)
        want = {"female": _scaled_count(n, t["n"], t["female"])}
        got = {"female": int((d["sex"] == "F").sum())}
        if g in PATIENTS:
            w = wors[wors["group"] == g]
            want.update(dmt=_scaled_count(n, t["n"], t["dmt"]), followup=_scaled_count(n, t["n"], t["followup_n"]),
                        events=_scaled_count(n, t["n"], t["events"]))
            got.update(dmt=int(d["dmt"].sum()), followup=len(w), events=int(w["worsening"].sum()))
        for key in want:
            if want[key] != got[key]:
                problems.append(f"{g} {key}: {got[key]} (want {want[key]})")
    if problems:
        raise AssertionError("example cohort misses exact counts: " + "; ".join(problems))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help=f"random seed (default {DEFAULT_SEED})")
    parser.add_argument("--out-dir", default=str(Path(__file__).resolve().parent),
                        help="where to write cohort.csv and visits.csv (default: this script's folder)")
    args = parser.parse_args(argv)
    cohort, visits = make_cohort(seed=args.seed)
    paths = write_cohort(cohort, visits, args.out_dir)
    with pd.option_context("display.max_rows", None, "display.max_colwidth", None, "display.width", 200):
        print(summarize(cohort, visits).to_string(index=False))
    print(f"\nseed {args.seed}: wrote {paths[0]} ({len(cohort)} subjects) and {paths[1]} ({len(visits)} visits)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
