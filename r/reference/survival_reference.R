# Kaplan–Meier, log-rank and Cox models computed with R's survival: the reference
# tests/test_survival.py compares bagkit.survival with.
#
# Usage:
#   Rscript r/reference/survival_reference.R export lung|veteran OUT.csv
#   Rscript r/reference/survival_reference.R fit IN.csv OUT.csv COVARIATES [--strata]
#
# export: survival::lung (columns time, status - 1 as event, age, sex, ph.ecog, ph.karno, wt.loss; complete
#   cases) or survival::veteran (time, status as event, karno, age, trt, diagtime, celltype), with subset "all".
# fit: IN has columns subset, time, event (0/1), the comma-separated COVARIATES and, with --strata, a column
#   stratum. A covariate named sex holding F/M is coded male = 1 and one named nbv is scaled x100 (HR per
#   1 %), as bagkit's Table 3. Per subset:
#   (coxph with its default control, as a user runs it)
#   cox_univariable   term = covariate   coxph(Surv(time, event) ~ x, ties = "efron"): hr, ci_low, ci_high,
#                                        p, coef, se (summary()), zph_chisq, zph_p (cox.zph(fit)), n, events
#   cox_multivariable term = covariate   the same with every covariate; term "global": zph_chisq, zph_df,
#                                        zph_p (cox.zph(fit)$table["GLOBAL", ])
#   km (--strata)     contrast = levels joined by " vs " in order of appearance:
#                     median_<level>, median_<level>_ci_low/_ci_high  summary(survfit(...))$table (conf.type
#                                        "log", survfit's default); n_<level>, events_<level>;
#                     logrank_chisq, logrank_p  survdiff(Surv(time, event) ~ stratum)
# OUT: tidy rows `analysis, subset, term, contrast, statistic, value`, 17 significant digits, first line a
# comment with the R and survival versions.
suppressMessages(library(survival))
options(warn = 1)
args <- commandArgs(trailingOnly = TRUE)

if (args[1] == "export") {
  if (args[2] == "lung") {
    d <- na.omit(lung[, c("time", "status", "age", "sex", "ph.ecog", "ph.karno", "wt.loss")])
    d$event <- d$status - 1
  } else {
    d <- veteran
    d$event <- d$status
  }
  d$status <- NULL
  d$subset <- "all"
  write.csv(d, args[3], row.names = FALSE)
  quit(save = "no")
}

input <- read.csv(args[2], stringsAsFactors = FALSE)
covariates <- strsplit(args[4], ",", fixed = TRUE)[[1]]
with_strata <- "--strata" %in% args
if ("sex" %in% covariates && is.character(input$sex)) input$sex <- ifelse(is.na(input$sex), NA, as.numeric(input$sex == "M"))
if ("nbv" %in% covariates) input$nbv <- input$nbv * 100
rows <- list()
add <- function(analysis, subset, term, contrast, statistic, value)
  rows[[length(rows) + 1]] <<- data.frame(analysis = analysis, subset = subset, term = term, contrast = contrast,
                                          statistic = statistic, value = value)
cox_rows <- function(analysis, s, d, covs) {
  d <- d[complete.cases(d[, c("time", "event", covs)]), ]
  fit <- coxph(as.formula(paste("Surv(time, event) ~", paste(covs, collapse = " + "))), data = d, ties = "efron")
  co <- summary(fit)$coefficients
  ci <- summary(fit)$conf.int
  zph <- cox.zph(fit)$table
  for (v in covs) {
    add(analysis, s, v, "", "hr", ci[v, "exp(coef)"])
    add(analysis, s, v, "", "ci_low", ci[v, "lower .95"])
    add(analysis, s, v, "", "ci_high", ci[v, "upper .95"])
    add(analysis, s, v, "", "p", co[v, "Pr(>|z|)"])
    add(analysis, s, v, "", "coef", co[v, "coef"])
    add(analysis, s, v, "", "se", co[v, "se(coef)"])
    add(analysis, s, v, "", "zph_chisq", zph[v, "chisq"])
    add(analysis, s, v, "", "zph_p", zph[v, "p"])
  }
  model_term <- if (analysis == "cox_univariable") covs[1] else ""
  add(analysis, s, model_term, "", "n", fit$n)
  add(analysis, s, model_term, "", "events", fit$nevent)
  if (analysis == "cox_multivariable") {
    add(analysis, s, "global", "", "zph_chisq", zph["GLOBAL", "chisq"])
    add(analysis, s, "global", "", "zph_df", zph["GLOBAL", "df"])
    add(analysis, s, "global", "", "zph_p", zph["GLOBAL", "p"])
  }
}
for (s in unique(input$subset)) {
  d <- input[input$subset == s, ]
  for (v in covariates) cox_rows("cox_univariable", s, d, v)
  cox_rows("cox_multivariable", s, d, covariates)
  if (with_strata) {
    levels <- unique(d$stratum)
    d$stratum <- factor(d$stratum, levels = levels)
    contrast <- paste(levels, collapse = " vs ")
    fit <- survfit(Surv(time, event) ~ stratum, data = d)
    tab <- summary(fit)$table
    for (i in seq_along(levels)) {
      k <- levels[i]
      add("km", s, "bag", contrast, paste0("median_", k), tab[i, "median"])
      add("km", s, "bag", contrast, paste0("median_", k, "_ci_low"), tab[i, "0.95LCL"])
      add("km", s, "bag", contrast, paste0("median_", k, "_ci_high"), tab[i, "0.95UCL"])
      add("km", s, "bag", contrast, paste0("n_", k), tab[i, "n.start"])
      add("km", s, "bag", contrast, paste0("events_", k), tab[i, "events"])
    }
    sd <- survdiff(Surv(time, event) ~ stratum, data = d)
    add("km", s, "bag", contrast, "logrank_chisq", sd$chisq)
    add("km", s, "bag", contrast, "logrank_p", pchisq(sd$chisq, length(levels) - 1, lower.tail = FALSE))
  }
}
writeLines(sprintf("# %s; survival %s", R.version.string, packageVersion("survival")), args[3])
out <- do.call(rbind, rows)
out$value <- trimws(formatC(out$value, digits = 17, format = "g"))
suppressWarnings(write.table(out, args[3], sep = ",", row.names = FALSE, append = TRUE, qmethod = "double"))
