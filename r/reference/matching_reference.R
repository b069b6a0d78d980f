# Propensity-score matching done directly in R with MatchIt: the reference that
# tests/test_matching.py compares bagkit.matching.match_groups() and table2() with, and that
# benchmarks/bench_matching.py times as a plain Rscript run.
#
# Usage:
#   Rscript r/reference/matching_reference.R IN.csv OUT_PREFIX --covariates a,b,c
#           [--id subject_id] [--treat COLUMN | --group COLUMN --groups A,B]
#           [--ratio 1] [--caliper 0.2] [--replace] [--exact a,b] [--m-order data] [--seed 1]
#           [--compare bag,brain_age]
#
# IN: a CSV with one row per subject. The treated group is `treat == 1` (--treat) or the rows whose
# --group column equals A, matched to the rows equal to B (other rows dropped, file order kept).
# As bagkit does: a `sex` column holding F/M is coded 0/1 (male = 1); other text columns are
# factors; `bag` = brain_age - age when absent and asked for by --compare; nbv =
# brain_volume_ml / icv_ml when absent; rows with a missing
# covariate or exact variable are left out (listed in OUT_PREFIX_left_out.csv).
#
# What runs:
#   set.seed(seed)
#   m <- MatchIt::matchit(reformulate(covariates, "treat"), data = d, method = "nearest",
#                         distance = "glm", ratio = ratio, caliper = caliper, replace = replace,
#                         exact = reformulate(exact), m.order = m_order)
#   s <- summary(m)
#   t.test(x[treat == 1 & weights > 0], x[treat == 0 & weights > 0], var.equal = TRUE)  # --compare
#
# OUT_PREFIX_subjects.csv        id, treat, distance, weight, subclass (m$distance, m$weights, m$subclass)
# OUT_PREFIX_pairs.csv           treated_id, control_id, slot (m$match.matrix, one row per link)
# OUT_PREFIX_balance_all.csv     s$sum.all      term, mean_treated, mean_control, smd, variance_ratio,
# OUT_PREFIX_balance_matched.csv s$sum.matched  ecdf_mean, ecdf_max (, std_pair_distance)
# OUT_PREFIX_nn.csv              s$nn           sample, control, treated
# OUT_PREFIX_ttest.csv           variable, diff, ci_low, ci_high, t, df, p        (--compare)
# OUT_PREFIX_left_out.csv        id
# OUT_PREFIX_caliper.csv         caliper_width (m$caliper, in propensity-score units; NA without caliper)
# OUT_PREFIX_timing.csv          step, seconds (read, matchit, summary)
# Every file's first line is a comment with the R and MatchIt versions; numbers have 17 digits.

options(warn = 1, stringsAsFactors = FALSE)
suppressPackageStartupMessages(library(MatchIt))

args <- commandArgs(trailingOnly = TRUE)
positional <- character()
opt <- list(id = "subject_id", ratio = "1", m_order = "data", replace = FALSE)
i <- 1
while (i <= length(args)) {
  a <- args[[i]]
  if (a == "--replace") {
    opt$replace <- TRUE
  } else if (startsWith(a, "--")) {
    opt[[gsub("-", "_", substring(a, 3))]] <- args[[i + 1]]
    i <- i + 1
  } else {
    positional <- c(positional, a)
  }
  i <- i + 1
}
if (length(positional) != 2 || is.null(opt$covariates)) {
  stop("usage: matching_reference.R IN.csv OUT_PREFIX --covariates a,b,c [options]")
}
split <- function(x) if (is.null(x) || x == "") character() else strsplit(x, ",", fixed = TRUE)[[1]]
covariates <- split(opt$covariates)
exact <- split(opt$exact)
compare <- split(opt$compare)
prefix <- positional[[2]]
header <- sprintf("# %s; MatchIt %s", R.version.string, as.character(packageVersion("MatchIt")))
write_out <- function(frame, suffix) {
  path <- paste0(prefix, "_", suffix, ".csv")
  writeLines(header, path)
  numeric <- vapply(frame, is.numeric, logical(1))
  frame[numeric] <- lapply(frame[numeric], function(x) ifelse(is.na(x), NA, sprintf("%.17g", x)))
  suppressWarnings(write.table(frame, path, sep = ",", row.names = FALSE, append = TRUE, na = "NA",
                               quote = TRUE))
}

started <- proc.time()[["elapsed"]]
d <- read.csv(positional[[1]], check.names = FALSE, na.strings = c("", "NA"),
              colClasses = setNames("character", opt$id))
if (!is.null(opt$treat)) {
  d$treat <- as.integer(d[[opt$treat]])
} else {
  groups <- split(opt$groups)
  d <- d[d[[opt$group]] %in% groups, , drop = FALSE]
  d$treat <- as.integer(d[[opt$group]] == groups[[1]])
}
if ("sex" %in% names(d) && is.character(d$sex)) d$sex <- ifelse(is.na(d$sex), NA, as.numeric(d$sex == "M"))
for (name in unique(c(covariates, exact))) {
  if (is.character(d[[name]])) d[[name]] <- factor(d[[name]])
}
if ("bag" %in% compare && !("bag" %in% names(d))) d$bag <- d$brain_age - d$age
if (!("nbv" %in% names(d)) && all(c("brain_volume_ml", "icv_ml") %in% names(d))) {
  d$nbv <- d$brain_volume_ml / d$icv_ml
}
complete <- complete.cases(d[unique(c(covariates, exact))])
write_out(data.frame(id = d[[opt$id]][!complete]), "left_out")
d <- d[complete, , drop = FALSE]
rownames(d) <- d[[opt$id]]
seconds_read <- proc.time()[["elapsed"]] - started

# MatchIt 4.5.1-4.5.3 on some systems truncate |distance differences| to integers (MatchIt #163,
# fixed in 4.5.4): with a propensity score in (0, 1) "nearest" then takes the left neighbour and
# calipers never bite. Where this MatchIt picks the wrong control in a three-unit example, hand
# it its own glm score times 1e9 (distances and caliper are divided back below).
probe <- suppressWarnings(matchit(treat ~ x, data = data.frame(treat = c(1, 0, 0), x = 1:3),
                                  distance = c(0.45, 0.10, 0.50)))
scale <- if (identical(unname(probe$match.matrix[1, 1]), "3")) 1 else 1e9
score <- if (scale == 1) "glm" else
  scale * as.numeric(matchit(reformulate(covariates, "treat"), data = d, method = NULL, distance = "glm")$distance)
if (!is.null(opt$seed)) set.seed(as.integer(opt$seed))
started <- proc.time()[["elapsed"]]
m <- matchit(reformulate(covariates, "treat"), data = d, method = "nearest", distance = score,
             ratio = as.integer(opt$ratio), caliper = if (is.null(opt$caliper)) NULL else as.numeric(opt$caliper),
             replace = opt$replace, exact = if (length(exact)) reformulate(exact) else NULL,
             m.order = opt$m_order)
seconds_matchit <- proc.time()[["elapsed"]] - started
s <- summary(m)
seconds_summary <- proc.time()[["elapsed"]] - started - seconds_matchit

write_out(data.frame(id = rownames(d), treat = d$treat, distance = as.numeric(m$distance) / scale,
                     weight = as.numeric(m$weights),
                     subclass = if (is.null(m$subclass)) NA_character_ else as.character(m$subclass)),
          "subjects")
mm <- m$match.matrix
links <- data.frame(treated_id = rep(rownames(mm), times = ncol(mm)), control_id = as.vector(mm),
                    slot = rep(seq_len(ncol(mm)), each = nrow(mm)))
write_out(links[!is.na(links$control_id), ], "pairs")
balance <- function(x) {
  names <- c("Means Treated" = "mean_treated", "Means Control" = "mean_control",
             "Std. Mean Diff." = "smd", "Var. Ratio" = "variance_ratio", "eCDF Mean" = "ecdf_mean",
             "eCDF Max" = "ecdf_max", "Std. Pair Dist." = "std_pair_distance")
  out <- data.frame(term = rownames(x))
  for (name in colnames(x)) out[[names[[name]]]] <- as.numeric(x[, name])
  for (name in intersect(c("mean_treated", "mean_control"), names(out))) {
    out[[name]][out$term == "distance"] <- out[[name]][out$term == "distance"] / scale
  }
  out
}
write_out(balance(s$sum.all), "balance_all")
write_out(balance(s$sum.matched), "balance_matched")
write_out(data.frame(sample = rownames(s$nn), control = s$nn[, "Control"], treated = s$nn[, "Treated"]), "nn")

if (length(compare)) {
  rows <- lapply(compare, function(name) {
    x <- d[[name]]
    used <- m$weights > 0 & !is.na(x)
    t <- t.test(x[used & d$treat == 1], x[used & d$treat == 0], var.equal = TRUE)
    data.frame(variable = name, diff = unname(t$estimate[1] - t$estimate[2]), ci_low = t$conf.int[1],
               ci_high = t$conf.int[2], t = unname(t$statistic), df = unname(t$parameter), p = t$p.value)
  })
  write_out(do.call(rbind, rows), "ttest")
}
write_out(data.frame(caliper_width = if (is.null(m$caliper)) NA_real_ else as.numeric(m$caliper[1]) / scale), "caliper")
write_out(data.frame(step = c("read", "matchit", "summary"),
                     seconds = c(seconds_read, seconds_matchit, seconds_summary)), "timing")
