# R's answers in the corners where bagkit once parted from R (tests/test_r_corners.py compares).
#
# Usage:
#   Rscript r/reference/corners_reference.R COMMAND IN.csv OUT.csv [ARGS]
#   Rscript r/reference/corners_reference.R export sleep|ChickWeight|km-aml|km-ovarian|km-veteran|km-lung OUT.csv
#
# COMMAND and what runs (IN is written by the test; OUT has columns name, value, 17 digits, and a first
# comment line with the R and package versions):
#   logrank   IN: time, event, stratum   sd <- survdiff(Surv(time, event) ~ stratum)   (timefix = TRUE)
#             chisq, df = sum(sd$exp > 0) - 1 (survdiff's own df), p = sd$pvalue
#   km        IN: time, event [, set]    q <- quantile(survfit(Surv(time, event) ~ 1), 0.5)  (conf.type "log")
#             median, ci_low, ci_high (NA when not reached); with a column `set`, one curve per set and
#             the names suffixed _<set>
#   cox       IN: time, event, x1..xk    fit <- coxph(Surv(time, event) ~ x1 + ..., ties = "efron");
#             z <- cox.zph(fit)          coef_<x>, zph_chisq_<x>, zph_p_<x>, zph_global_chisq, zph_global_p
#   center    IN: bag, group, center     anova(lm(bag ~ factor(group) + factor(center)))["factor(center)", ]:
#             f, df, df_residual, p
#   welch     IN: value, group (A, B)    t.test(value[A], value[B], var.equal = FALSE): t, df, p, diff,
#             ci_low, ci_high
#   roc       IN: marker, event; ARGS: DIRECTION ("<", ">" or "auto")
#             r <- pROC::roc(event, marker, direction = DIRECTION, levels = c(0, 1)); auc, ci_low, ci_high
#             (ci.auc delong), direction_higher_is_event (1 for "<"), threshold_spec80, sensitivity_spec80,
#             specificity_spec80 (highest sensitivity among coords with specificity >= 0.8; ties: highest
#             specificity, lowest threshold), threshold_youden (coords(r, "best"), the lowest tied threshold)
#   psm_effect IN: MatchIt's matched data (match.data(m): bag, treat, subclass, weights, covariates, as
#             matching_reference.R made them); ARGS: COV1,COV2,..   (MatchIt's vignette on effects)
#             fit <- lm(bag ~ treat [+ covariates], data = md, weights = weights)
#             coeftest(fit, vcov. = vcovCL, cluster = ~subclass); coefci(fit, vcov. = vcovCL, cluster = ~subclass)
#             estimate, se, t, p, ci_low, ci_high, df, and the same prefixed adjusted_; n, clusters
#   bias      IN: age, brain_age, control (1/0), fold (controls' cross-fitting fold); ARGS: linear|bag
#             fit <- lm(brain_age ~ age) (linear) or lm(I(brain_age - age) ~ age) (bag) on the controls:
#             slope, intercept; bag_<i> the corrected BAG of row i: patients by the full fit, each control
#             by the fit on the controls of the other folds
#   lm_age    IN: bag, group, age; ARGS: A,B     lm(bag ~ group) and lm(bag ~ group + age) on groups A and B,
#             group a factor whose reference is B: estimate, se, t, p, ci_low, ci_high (confint), df of the
#             group A coefficient (prefixed adjusted_ for the model with age)
options(warn = 1, stringsAsFactors = FALSE)
`%||%` <- function(a, b) if (is.null(a)) b else a
args <- commandArgs(trailingOnly = TRUE)
command <- args[1]
if (command == "export") {
  # public data sets as CSV: sleep (value, group), ChickWeight (bag = weight, group = Diet, center = Chick),
  # km-<name> survival data (time, event): aml, ovarian, veteran, lung (status - 1), leukemia
  name <- args[2]
  out <- if (name == "sleep") {
    data.frame(value = sleep$extra, group = paste0("drug", sleep$group))
  } else if (name == "ChickWeight") {
    data.frame(bag = ChickWeight$weight, group = paste0("diet", ChickWeight$Diet),
               center = paste0("chick", as.character(ChickWeight$Chick)))
  } else if (startsWith(name, "km-")) {
    suppressMessages(library(survival))
    d <- switch(sub("km-", "", name), aml = survival::aml[, c("time", "status")],
                ovarian = data.frame(time = survival::ovarian$futime, status = survival::ovarian$fustat),
                veteran = survival::veteran[, c("time", "status")],
                lung = data.frame(time = survival::lung$time, status = survival::lung$status - 1))
    data.frame(time = d$time, event = d$status)
  } else stop("unknown data set ", name)
  write.csv(out, args[3], row.names = FALSE)
  quit(save = "no")
}
d <- read.csv(args[2], stringsAsFactors = FALSE, na.strings = c("", "NA"))
out <- list()
put <- function(name, value) out[[name]] <<- if (length(value) == 0 || is.null(value)) NA_real_ else as.numeric(value)
versions <- R.version.string

if (command == "logrank") {
  suppressMessages(library(survival))
  versions <- sprintf("%s; survival %s", versions, packageVersion("survival"))
  sd <- survdiff(Surv(time, event) ~ stratum, data = d)
  put("chisq", sd$chisq)
  put("df", sum(sd$exp > 0) - 1)
  put("p", sd$pvalue)
} else if (command == "km") {
  suppressMessages(library(survival))
  versions <- sprintf("%s; survival %s", versions, packageVersion("survival"))
  sets <- if (is.null(d$set)) list(d) else split(d, d$set)
  for (name in names(sets) %||% "") {
    part <- if (name == "") d else sets[[name]]
    q <- quantile(survfit(Surv(time, event) ~ 1, data = part), 0.5)
    suffix <- if (name == "") "" else paste0("_", name)
    put(paste0("median", suffix), q$quantile)
    put(paste0("ci_low", suffix), q$lower)
    put(paste0("ci_high", suffix), q$upper)
  }
} else if (command == "cox") {
  suppressMessages(library(survival))
  versions <- sprintf("%s; survival %s", versions, packageVersion("survival"))
  covariates <- grep("^x[0-9]+$", names(d), value = TRUE)
  fit <- coxph(reformulate(covariates, response = "Surv(time, event)"), data = d, ties = "efron")
  z <- cox.zph(fit)$table
  for (v in covariates) {
    put(paste0("coef_", v), coef(fit)[[v]])
    put(paste0("zph_chisq_", v), z[v, "chisq"])
    put(paste0("zph_p_", v), z[v, "p"])
  }
  put("zph_global_chisq", z["GLOBAL", "chisq"])
  put("zph_global_p", z["GLOBAL", "p"])
} else if (command == "center") {
  tab <- anova(lm(bag ~ factor(group) + factor(center), data = d))
  if (!"factor(center)" %in% rownames(tab)) stop("no center row: every center lies within one group")
  put("f", tab["factor(center)", "F value"])
  put("df", tab["factor(center)", "Df"])
  put("df_residual", tab["Residuals", "Df"])
  put("p", tab["factor(center)", "Pr(>F)"])
} else if (command == "welch") {
  levels <- unique(d$group)
  a <- d$value[d$group == levels[1]]
  b <- d$value[d$group == levels[2]]
  t <- t.test(a, b, var.equal = FALSE)
  put("t", t$statistic)
  put("df", t$parameter)
  put("p", t$p.value)
  put("diff", mean(a) - mean(b))
  put("ci_low", t$conf.int[1])
  put("ci_high", t$conf.int[2])
} else if (command == "roc") {
  suppressMessages(library(pROC))
  versions <- sprintf("%s; pROC %s", versions, packageVersion("pROC"))
  r <- roc(d$event, d$marker, direction = args[4], levels = c(0, 1), quiet = TRUE)
  ci <- ci.auc(r, method = "delong")
  put("auc", as.numeric(auc(r)))
  put("ci_low", ci[1])
  put("ci_high", ci[3])
  put("direction_higher_is_event", as.numeric(r$direction == "<"))
  all <- coords(r, x = "all", ret = c("threshold", "specificity", "sensitivity"), transpose = FALSE)
  ok <- all[all$specificity >= 0.8 - 1e-12, ]
  ok <- ok[ok$sensitivity >= max(ok$sensitivity) - 1e-12, ]
  ok <- ok[ok$specificity >= max(ok$specificity) - 1e-12, ]
  ok <- ok[order(ok$threshold), ]
  put("threshold_spec80", ok$threshold[1])
  put("sensitivity_spec80", ok$sensitivity[1])
  put("specificity_spec80", ok$specificity[1])
  best <- coords(r, "best", best.method = "youden", ret = c("threshold"), transpose = FALSE)
  put("threshold_youden", min(best$threshold))
} else if (command == "bias") {
  # IN: age, brain_age, control (1/0), fold (0..k-1 for controls, NA otherwise); ARGS: METHOD
  method <- args[4]
  d$target <- if (method == "linear") d$brain_age else d$brain_age - d$age
  correct <- function(fit, x) {
    a <- coef(fit)[["age"]]; b <- coef(fit)[["(Intercept)"]]
    if (method == "linear") (x$brain_age - b) / a - x$age else (x$brain_age - x$age) - (a * x$age + b)
  }
  controls <- d[d$control == 1, ]
  fit <- lm(target ~ age, data = controls)
  put("slope", coef(fit)[["age"]])
  put("intercept", coef(fit)[["(Intercept)"]])
  bag <- correct(fit, d)
  for (k in unique(na.omit(controls$fold))) {
    held <- which(d$control == 1 & d$fold == k)
    bag[held] <- correct(lm(target ~ age, data = controls[which(controls$fold != k), ]), d[held, ])
  }
  for (i in seq_len(nrow(d))) put(paste0("bag_", i), bag[i])
} else if (command == "lm_age") {
  levels <- strsplit(args[4], ",", fixed = TRUE)[[1]]
  d <- d[d$group %in% levels, ]
  d$group <- factor(d$group, levels = rev(levels))
  term <- paste0("group", levels[1])
  for (adjusted in c(FALSE, TRUE)) {
    fit <- if (adjusted) lm(bag ~ group + age, data = d) else lm(bag ~ group, data = d)
    co <- summary(fit)$coefficients
    ci <- confint(fit)
    prefix <- if (adjusted) "adjusted_" else ""
    put(paste0(prefix, "estimate"), co[term, "Estimate"])
    put(paste0(prefix, "se"), co[term, "Std. Error"])
    put(paste0(prefix, "t"), co[term, "t value"])
    put(paste0(prefix, "p"), co[term, "Pr(>|t|)"])
    put(paste0(prefix, "ci_low"), ci[term, 1])
    put(paste0(prefix, "ci_high"), ci[term, 2])
    put(paste0(prefix, "df"), fit$df.residual)
  }
} else if (command == "psm_effect") {
  suppressMessages({library(sandwich); library(lmtest)})
  versions <- sprintf("%s; sandwich %s; lmtest %s", versions, packageVersion("sandwich"), packageVersion("lmtest"))
  covariates <- strsplit(args[4], ",", fixed = TRUE)[[1]]
  md <- d[d$weights > 0, ]
  md$subclass <- factor(md$subclass)
  for (adjusted in c(FALSE, TRUE)) {
    fit <- lm(reformulate(c("treat", if (adjusted) covariates), "bag"), data = md, weights = weights)
    ct <- coeftest(fit, vcov. = vcovCL, cluster = ~subclass)
    ci <- coefci(fit, vcov. = vcovCL, cluster = ~subclass)
    prefix <- if (adjusted) "adjusted_" else ""
    put(paste0(prefix, "estimate"), ct["treat", 1])
    put(paste0(prefix, "se"), ct["treat", 2])
    put(paste0(prefix, "t"), ct["treat", 3])
    put(paste0(prefix, "p"), ct["treat", 4])
    put(paste0(prefix, "ci_low"), ci["treat", 1])
    put(paste0(prefix, "ci_high"), ci["treat", 2])
    put(paste0(prefix, "df"), fit$df.residual)
  }
  put("n", nrow(md))
  put("clusters", nlevels(md$subclass))
} else {
  stop("unknown command ", command)
}
writeLines(sprintf("# %s", versions), args[3])
frame <- data.frame(name = names(out), value = trimws(formatC(unlist(out), digits = 17, format = "g")))
suppressWarnings(write.table(frame, args[3], sep = ",", row.names = FALSE, append = TRUE, qmethod = "double"))
