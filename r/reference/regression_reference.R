# Linear regressions, subgroup t-tests and center ANOVAs computed with R's stats: the reference
# tests/test_regression.py compares bagkit.regression / bagkit.outcomes.run_regressions with.
#
# Usage:
#   Rscript r/reference/regression_reference.R IN.csv OUT.csv CONTROL
#
# IN: bagkit's canonical columns after reading (group, bag, edss, nbv, disease_duration, brain_age_sd, aqp4,
# lesion_volume_ml, center), as written by the test from Cohort.data. Groups in order of appearance;
# CONTROL is the control group's label (patient groups are the others).
# OUT: tidy rows `analysis, subset, term, contrast, statistic, value` (17 significant digits; first line a
# comment with the R version):
#   regression  per patient group  lm(bag ~ edss), lm(bag ~ nbv): beta, se, t, p, ci_low, ci_high
#               (summary(), confint()), r (cor.test()$estimate), model n, r2, adj_r2, f, f_p
#               lm(edss ~ bag + nbv + disease_duration): the same per term
#               per group          lm(brain_age_sd ~ bag)
#   subgroup    per patient group  t.test(bag[aqp4 == "pos"], bag[aqp4 == "neg"], var.equal = TRUE);
#               t.test(bag[lesion_volume_ml > 0], bag[lesion_volume_ml == 0], var.equal = TRUE): p, t, df,
#               diff, ci_low, ci_high (contrast "A - B" for the last three); n, mean, sd per level
#   center      per group          summary(aov(bag ~ factor(center))): f, df, df_residual, p
#               "all"              anova(lm(bag ~ factor(group) + factor(center)))["factor(center)", ]
options(warn = 1, stringsAsFactors = FALSE)
args <- commandArgs(trailingOnly = TRUE)
d <- read.csv(args[1], stringsAsFactors = FALSE, na.strings = c("", "NA"))
control <- args[3]
groups <- unique(d$group)
patients <- setdiff(groups, control)
rows <- list()
add <- function(analysis, subset, term, contrast, statistic, value)
  rows[[length(rows) + 1]] <<- data.frame(analysis = analysis, subset = subset, term = term, contrast = contrast,
                                          statistic = statistic, value = value)
model <- function(s, x, response, predictors) {
  f <- paste(response, "~", paste(predictors, collapse = " + "))
  x <- x[complete.cases(x[, c(response, predictors)]), ]
  fit <- lm(as.formula(f), data = x)
  sm <- summary(fit)
  co <- sm$coefficients
  ci <- confint(fit)
  add("regression", s, "(Intercept)", f, "beta", co["(Intercept)", "Estimate"])
  for (v in predictors) {
    add("regression", s, v, f, "beta", co[v, "Estimate"])
    add("regression", s, v, f, "se", co[v, "Std. Error"])
    add("regression", s, v, f, "t", co[v, "t value"])
    add("regression", s, v, f, "p", co[v, "Pr(>|t|)"])
    add("regression", s, v, f, "ci_low", ci[v, 1])
    add("regression", s, v, f, "ci_high", ci[v, 2])
  }
  if (length(predictors) == 1)
    add("regression", s, predictors, f, "r", unname(cor.test(x[[predictors]], x[[response]])$estimate))
  add("regression", s, "model", f, "n", nrow(x))
  add("regression", s, "model", f, "r2", sm$r.squared)
  add("regression", s, "model", f, "adj_r2", sm$adj.r.squared)
  add("regression", s, "model", f, "f", sm$fstatistic[["value"]])
  add("regression", s, "model", f, "f_p", pf(sm$fstatistic[["value"]], sm$fstatistic[["numdf"]],
                                             sm$fstatistic[["dendf"]], lower.tail = FALSE))
}
ttest <- function(s, a, b, levels) {
  a <- a[!is.na(a)]; b <- b[!is.na(b)]
  if (length(a) < 2 || length(b) < 2) return()
  t <- t.test(a, b, var.equal = TRUE)
  contrast <- paste(levels[1], "vs", levels[2])
  diff <- paste(levels[1], "-", levels[2])
  add("subgroup", s, "bag", contrast, "p", t$p.value)
  add("subgroup", s, "bag", contrast, "t", unname(t$statistic))
  add("subgroup", s, "bag", contrast, "df", unname(t$parameter))
  add("subgroup", s, "bag", diff, "diff", mean(a) - mean(b))
  add("subgroup", s, "bag", diff, "ci_low", t$conf.int[1])
  add("subgroup", s, "bag", diff, "ci_high", t$conf.int[2])
  for (i in 1:2) {
    v <- list(a, b)[[i]]
    add("subgroup", s, "bag", levels[i], "n", length(v))
    add("subgroup", s, "bag", levels[i], "mean", mean(v))
    add("subgroup", s, "bag", levels[i], "sd", sd(v))
  }
}
for (g in patients) {
  x <- d[d$group == g, ]
  model(g, x, "bag", "edss")
  model(g, x, "bag", "nbv")
  model(g, x, "edss", c("bag", "nbv", "disease_duration"))
}
for (g in groups) model(g, d[d$group == g, ], "brain_age_sd", "bag")
for (g in patients) {
  x <- d[d$group == g, ]
  if (any(!is.na(x$aqp4)))
    ttest(g, x$bag[which(x$aqp4 == "pos")], x$bag[which(x$aqp4 == "neg")], c("aqp4=pos", "aqp4=neg"))
  ttest(g, x$bag[which(x$lesion_volume_ml > 0)], x$bag[which(x$lesion_volume_ml == 0)], c("lesions", "no lesions"))
}
for (g in groups) {
  x <- d[d$group == g & !is.na(d$bag) & !is.na(d$center), ]
  tab <- summary(aov(bag ~ factor(center), data = x))[[1]]
  add("center", g, "bag", "overall", "f", tab[1, "F value"])
  add("center", g, "bag", "overall", "df", tab[1, "Df"])
  add("center", g, "bag", "overall", "df_residual", tab[2, "Df"])
  add("center", g, "bag", "overall", "p", tab[1, "Pr(>F)"])
}
x <- d[!is.na(d$bag) & !is.na(d$center), ]
tab <- anova(lm(bag ~ factor(group) + factor(center), data = x))
add("center", "all", "bag", "overall adjusted for group", "f", tab["factor(center)", "F value"])
add("center", "all", "bag", "overall adjusted for group", "df", tab["factor(center)", "Df"])
add("center", "all", "bag", "overall adjusted for group", "df_residual", tab["Residuals", "Df"])
add("center", "all", "bag", "overall adjusted for group", "p", tab["factor(center)", "Pr(>F)"])
writeLines(sprintf("# %s", R.version.string), args[2])
out <- do.call(rbind, rows)
out$value <- trimws(formatC(out$value, digits = 17, format = "g"))
suppressWarnings(write.table(out, args[2], sep = ",", row.names = FALSE, append = TRUE, qmethod = "double"))
