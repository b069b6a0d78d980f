# Table 1 computed with R's own functions: the reference that tests/test_table1_against_r.py
# compares bagkit's table1(cohort).tidy() with, row by row.
#
# Usage:
#   Rscript r/reference/table1_reference.R IN.csv OUT.csv [CONTROL]
#           [--column CANONICAL=YOURS ...] [--visits VISITS.csv] [--groups A,B,C] [--no-control]
#
# IN: a cohort table (CSV, or TSV when it ends in .tsv/.txt) with bagkit's canonical columns
# (subject_id, group, age, sex, edss, ...; whatever is present), or the user's own names mapped with
# --column as bagkit's read_cohort(columns=...) does. Derived as bagkit's contract says:
# bag = brain_age - age; nbv = brain_volume_ml / icv_ml when nbv is absent; worsening and
# followup_years from a visits table (rise >= 1.0 over a baseline <= 5.5, >= 0.5 over a baseline
# > 5.5; first such visit, else censored at the last visit) or from edss_followup.
#
# OUT: the tidy long table `analysis, subset, term, contrast, statistic, value`, one number per row,
# every number written with 17 significant digits. Its first line is a comment holding the R and
# package versions (read it with comment = "#").
#
# What computes each number:
#   mean, sd, min, max               mean(), sd(), min(), max()
#   ci_low, ci_high (bag, SD)        t.test(x)$conf.int
#   median, q1, q3, iqr (EDSS)       quantile(x, c(.25, .5, .75), type = 7)
#   >= 3 groups, continuous          summary(aov(y ~ g)) (F, p) + TukeyHSD (diff, lwr, upr, p adj;
#                                    q = |diff| / sqrt(MSE / 2 (1/n_a + 1/n_b)), as TukeyHSD.aov)
#   2 groups, continuous             t.test(a, b, var.equal = TRUE)
#   categorical                      chisq.test(counts) (Yates' correction for 2 x 2, R's default)
#   EDSS                             wilcox.test(a, b) (2 groups); kruskal.test + pairwise wilcox.test
# Pairs: each patient group vs the control, then patient vs patient in group order; diff = first -
# second. Groups are kept in file order (or --groups order).

options(warn = 1, stringsAsFactors = FALSE)

args <- commandArgs(trailingOnly = TRUE)
positional <- character()
mapping <- character()
visits_path <- NULL
group_order <- NULL
no_control <- FALSE
i <- 1
while (i <= length(args)) {
  a <- args[[i]]
  if (a == "--column") {
    kv <- strsplit(args[[i + 1]], "=", fixed = TRUE)[[1]]
    mapping[kv[1]] <- paste(kv[-1], collapse = "=")
    i <- i + 2
  } else if (a == "--visits") {
    visits_path <- args[[i + 1]]
    i <- i + 2
  } else if (a == "--groups") {
    group_order <- strsplit(args[[i + 1]], ",", fixed = TRUE)[[1]]
    i <- i + 2
  } else if (a == "--no-control") {
    no_control <- TRUE
    i <- i + 1
  } else {
    positional <- c(positional, a)
    i <- i + 1
  }
}
if (length(positional) < 2) {
  stop("usage: Rscript table1_reference.R IN.csv OUT.csv [CONTROL] [--column CANONICAL=YOURS ...] ",
       "[--visits VISITS.csv] [--groups A,B] [--no-control]")
}
in_path <- positional[1]
out_path <- positional[2]
control <- if (no_control) NA_character_ else if (length(positional) >= 3) positional[3] else "HC"

missing_codes <- c("", "n/a", "N/A", "NA", "na", "NaN", "nan", "null", "NULL", "None", ".")

read_table <- function(path) {
  sep <- if (grepl("\\.(tsv|txt)(\\.gz)?$", tolower(path))) "\t" else ","
  read.table(path, header = TRUE, sep = sep, colClasses = "character", na.strings = missing_codes,
             strip.white = TRUE, check.names = FALSE, quote = "\"", comment.char = "")
}

data <- read_table(in_path)
for (canonical in names(mapping)) {
  names(data)[names(data) == mapping[[canonical]]] <- canonical
}
if (!("subject_id" %in% names(data)) && "participant_id" %in% names(data)) {
  names(data)[names(data) == "participant_id"] <- "subject_id"
}
if (!("group" %in% names(data)) && "diagnosis" %in% names(data)) {
  names(data)[names(data) == "diagnosis"] <- "group"
}

numeric_columns <- c("age", "brain_age", "brain_age_sd", "brain_age_filled", "edss", "age_at_diagnosis",
                     "disease_duration", "brain_volume_ml", "icv_ml", "nbv", "lesion_volume_ml",
                     "followup_years", "edss_followup")
for (column in intersect(numeric_columns, names(data))) data[[column]] <- as.numeric(data[[column]])
code <- function(x, codes) unname(codes[tolower(x)])
if ("sex" %in% names(data)) {
  data$sex <- code(data$sex, c(f = "F", female = "F", w = "F", woman = "F", m = "M", male = "M", man = "M"))
}
binary <- c("0" = 0, "1" = 1, "0.0" = 0, "1.0" = 1, no = 0, yes = 1, false = 0, true = 1)
for (column in intersect(c("dmt", "worsening"), names(data))) data[[column]] <- code(data[[column]], binary)
if ("aqp4" %in% names(data)) {
  data$aqp4 <- code(data$aqp4, c(pos = "pos", positive = "pos", "+" = "pos", "1" = "pos",
                                 neg = "neg", negative = "neg", "-" = "neg", "0" = "neg"))
}

groups <- unique(data$group)
if (!is.null(group_order)) {
  data <- data[data$group %in% group_order, , drop = FALSE]
  groups <- group_order
}
if (!is.na(control) && !(control %in% groups)) stop("control group ", control, " not in the table")

if ("brain_age" %in% names(data)) data$bag <- data$brain_age - data$age
if (!("nbv" %in% names(data)) && all(c("brain_volume_ml", "icv_ml") %in% names(data))) {
  data$nbv <- data$brain_volume_ml / data$icv_ml
}

threshold <- function(baseline) ifelse(baseline <= 5.5, 1.0, 0.5)

if (!is.null(visits_path)) {
  visits <- read_table(visits_path)
  visits$years <- as.numeric(visits$years)
  visits$edss <- as.numeric(visits$edss)
  baseline <- setNames(if ("edss" %in% names(data)) data$edss else rep(NA_real_, nrow(data)), data$subject_id)
  zero <- visits[visits$years == 0, ]
  for (k in seq_len(nrow(zero))) {
    s <- zero$subject_id[k]
    if (is.na(baseline[s])) baseline[s] <- zero$edss[k]
  }
  follow <- visits[visits$years > 0 & visits$subject_id %in% data$subject_id, ]  # groups kept only
  data$worsening <- NA_real_
  data$followup_years <- NA_real_
  data$followup_total_years <- NA_real_
  for (s in unique(follow$subject_id)) {
    v <- follow[follow$subject_id == s, ]
    v <- v[order(v$years), ]
    event <- v$edss - baseline[[s]] >= threshold(baseline[[s]]) - 1e-9
    row <- match(s, data$subject_id)
    data$followup_total_years[row] <- max(v$years)
    if (any(event)) {
      data$worsening[row] <- 1
      data$followup_years[row] <- v$years[which(event)[1]]
    } else {
      data$worsening[row] <- 0
      data$followup_years[row] <- max(v$years)
    }
  }
} else if ("edss_followup" %in% names(data) && !("worsening" %in% names(data))) {
  has <- !is.na(data$edss_followup) & !is.na(data$edss)
  data$worsening <- ifelse(has, as.numeric(data$edss_followup - data$edss >= threshold(data$edss) - 1e-9),
                           NA_real_)
}

pairs_for <- function(names, control) {
  patients <- names[names != control | is.na(control)]
  pairs <- if (!is.na(control) && control %in% names) lapply(patients, function(g) c(g, control)) else list()
  if (length(patients) >= 2) pairs <- c(pairs, combn(patients, 2, simplify = FALSE))
  pairs
}
vs <- function(pair) paste(pair[1], "vs", pair[2])
minus <- function(pair) paste(pair[1], "-", pair[2])

rows <- list()
add <- function(subset, term, contrast, statistic, value) {
  rows[[length(rows) + 1]] <<- data.frame(analysis = "table1", subset = subset, term = term,
                                          contrast = contrast, statistic = statistic, value = as.numeric(value))
}

n_group <- sapply(groups, function(g) sum(data$group == g))
for (g in groups) add(g, "n", "", "n", n_group[[g]])

variables <- list(
  list(column = "age", kind = "mean"),
  list(column = "sex", kind = "proportion", level = "F"),
  list(column = "aqp4", kind = "proportion", level = "pos"),
  list(column = "age_at_diagnosis", kind = "mean"),
  list(column = "disease_duration", kind = "mean"),
  list(column = "dmt", kind = "proportion", level = 1),
  list(column = "edss", kind = "median"),
  list(column = "brain_volume_ml", kind = "mean"),
  list(column = "nbv", kind = "mean"),
  list(column = "lesion_volume_ml", kind = "mean"),
  list(column = "brain_age", kind = "mean"),
  list(column = "bag", kind = "mean_ci"),
  list(column = "brain_age_sd", kind = "mean_ci"),
  list(column = "followup_years", kind = "count"),
  list(column = "followup_total_years", kind = "mean", followup_only = TRUE),
  list(column = "followup_years", kind = "mean", followup_only = TRUE),
  list(column = "worsening", kind = "proportion", level = 1, followup_only = TRUE)
)

for (variable in variables) {
  column <- variable$column
  kind <- variable$kind
  if (!(column %in% names(data)) || all(is.na(data[[column]]))) next
  term <- if (kind == "count") "followup" else column
  rows_of <- data
  if (isTRUE(variable$followup_only)) rows_of <- data[!is.na(data$followup_years), , drop = FALSE]
  samples <- list()
  counts <- NULL
  for (g in groups) {
    x <- rows_of[[column]][rows_of$group == g]
    x <- x[!is.na(x)]
    if (kind == "proportion") {
      if (length(x) == 0) next
      count <- sum(x == variable$level)
      add(g, term, "", "count", count)
      add(g, term, "", "total", length(x))
      add(g, term, "", "percent", 100 * count / length(x))
      samples[[g]] <- x
      counts <- rbind(counts, c(count, length(x) - count))
      next
    }
    if (length(x) == 0) next
    if (kind == "count") {
      add(g, term, "", "count", length(x))
      add(g, term, "", "total", n_group[[g]])
      add(g, term, "", "percent", 100 * length(x) / n_group[[g]])
      next
    }
    add(g, term, "", "n", length(x))
    if (kind == "median") {
      q <- quantile(x, c(0.25, 0.5, 0.75), type = 7, names = FALSE)
      add(g, term, "", "median", q[2])
      add(g, term, "", "q1", q[1])
      add(g, term, "", "q3", q[3])
      add(g, term, "", "iqr", q[3] - q[1])
    } else {
      add(g, term, "", "mean", mean(x))
      add(g, term, "", "sd", sd(x))
      if (kind == "mean_ci" && length(x) > 1) {
        ci <- t.test(x)$conf.int
        add(g, term, "", "ci_low", ci[1])
        add(g, term, "", "ci_high", ci[2])
      }
    }
    add(g, term, "", "min", min(x))
    add(g, term, "", "max", max(x))
    if (length(x) >= 2) samples[[g]] <- x
  }
  names_tested <- names(samples)
  if (kind == "count" || length(names_tested) < 2) next

  if (kind == "proportion") {
    test <- suppressWarnings(chisq.test(counts))  # Yates' correction when 2 x 2 (R's default)
    contrast <- if (length(names_tested) > 2) "overall" else vs(pairs_for(names_tested, control)[[1]])
    add("all", term, contrast, "p", test$p.value)
    add("all", term, contrast, "chi2", test$statistic)
    add("all", term, contrast, "df", test$parameter)
    next
  }

  pairs <- pairs_for(names_tested, control)
  if (length(names_tested) == 2) pairs <- pairs[1]
  if (kind == "median") {
    if (length(names_tested) > 2) {
      test <- kruskal.test(unname(samples))
      add("all", term, "overall", "p", test$p.value)
      add("all", term, "overall", "chi2", test$statistic)
      add("all", term, "overall", "df", test$parameter)
    }
    for (pair in pairs) {
      # exact p when both n < 50 and no ties, else the normal approximation with continuity and
      # tie correction: wilcox.test's defaults
      test <- suppressWarnings(wilcox.test(samples[[pair[1]]], samples[[pair[2]]]))
      add("all", term, vs(pair), "p", test$p.value)
      add("all", term, vs(pair), "W", test$statistic)
    }
    next
  }

  if (length(names_tested) == 2) {
    pair <- pairs[[1]]
    test <- t.test(samples[[pair[1]]], samples[[pair[2]]], var.equal = TRUE)
    add("all", term, vs(pair), "p", test$p.value)
    add("all", term, vs(pair), "t", test$statistic)
    add("all", term, vs(pair), "df", test$parameter)
    add("all", term, minus(pair), "diff", test$estimate[[1]] - test$estimate[[2]])
    add("all", term, minus(pair), "ci_low", test$conf.int[1])
    add("all", term, minus(pair), "ci_high", test$conf.int[2])
    next
  }

  frame <- data.frame(y = unlist(samples, use.names = FALSE),
                      g = factor(rep(names_tested, lengths(samples)), levels = names_tested))
  fit <- aov(y ~ g, data = frame)
  anova <- summary(fit)[[1]]
  add("all", term, "overall", "p", anova[["Pr(>F)"]][1])
  add("all", term, "overall", "F", anova[["F value"]][1])
  add("all", term, "overall", "df", anova[["Df"]][1])
  tukey <- TukeyHSD(fit, "g", conf.level = 0.95)$g
  mse <- sum(residuals(fit)^2) / fit$df.residual
  sizes <- table(frame$g)
  for (pair in pairs) {
    forward <- paste(pair[1], pair[2], sep = "-")
    backward <- paste(pair[2], pair[1], sep = "-")
    if (forward %in% rownames(tukey)) {
      r <- tukey[forward, ]
      diff <- r[["diff"]]; low <- r[["lwr"]]; high <- r[["upr"]]
    } else {
      r <- tukey[backward, ]
      diff <- -r[["diff"]]; low <- -r[["upr"]]; high <- -r[["lwr"]]
    }
    q <- abs(diff) / sqrt(mse / 2 * (1 / sizes[[pair[1]]] + 1 / sizes[[pair[2]]]))
    add("all", term, vs(pair), "p", r[["p adj"]])
    add("all", term, vs(pair), "q", q)
    add("all", term, vs(pair), "df", fit$df.residual)
    add("all", term, minus(pair), "diff", diff)
    add("all", term, minus(pair), "ci_low", low)
    add("all", term, minus(pair), "ci_high", high)
  }
}

out <- do.call(rbind, rows)
out$value <- ifelse(is.na(out$value), "NaN", sprintf("%.17g", out$value))
connection <- file(out_path, "w")
writeLines(sprintf("# %s; stats %s", R.version.string, as.character(packageVersion("stats"))), connection)
write.csv(out, connection, row.names = FALSE, quote = TRUE)
close(connection)
