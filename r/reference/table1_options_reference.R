# Table 1 options computed with base R: the reference tests/test_table1_options.py compares
# bagkit's table1(cohort, Table1Options(...)) with.
#
# Usage:
#   Rscript r/reference/table1_options_reference.R DATA.csv P.csv OUT.csv
#
# DATA: columns group, then one column per variable, already as bagkit describes them (a binary
#   variable as 0/1 of its level; empty = missing). Which are binary is listed in P.csv.
# P: columns term, binary (0/1), median (0/1: described by its median), p (the variable-level p value
#   of the row; empty when none).
# OUT: term, contrast, statistic, value with
#   smd        for each pair of groups "A vs B" (group order of DATA's first appearance):
#              (mean_A - mean_B) / sqrt((var_A + var_B) / 2), var = var() (n - 1) for a continuous
#              variable and p (1 - p) for a binary one -- the formula of tableone's ExtractSmd
#              (StdDiff / StdDiffMulti for two levels) and of cobalt's pooled s.d.denom
#   abs_smd    the mean of |smd| over the pairs ("mean of pairs"; the pair itself for two groups)
#   missing    sum(is.na(x)) per group (contrast = group)
#   mean, sd   over all groups together (contrast = "overall"); median for a median-described one
#   p_holm, p_bh  p.adjust(p, "holm") and p.adjust(p, "BH") over the rows with a p value
args <- commandArgs(trailingOnly = TRUE)
data <- read.csv(args[1], stringsAsFactors = FALSE, check.names = FALSE)
ps <- read.csv(args[2], stringsAsFactors = FALSE)
groups <- unique(data$group)
out <- list()
add <- function(term, contrast, statistic, value) {
  out[[length(out) + 1]] <<- data.frame(term = term, contrast = contrast, statistic = statistic, value = value)
}
for (i in seq_len(nrow(ps))) {
  term <- ps$term[i]
  if (!(term %in% names(data))) next  # a row given only for its p value (the family of p.adjust)
  binary <- ps$binary[i] == 1
  x <- data[[term]]
  smds <- c()
  if (length(groups) >= 2) {
    for (a in 1:(length(groups) - 1)) for (b in (a + 1):length(groups)) {
      xa <- x[data$group == groups[a] & !is.na(x)]
      xb <- x[data$group == groups[b] & !is.na(x)]
      if (length(xa) < 2 || length(xb) < 2) next
      va <- if (binary) mean(xa) * (1 - mean(xa)) else var(xa)
      vb <- if (binary) mean(xb) * (1 - mean(xb)) else var(xb)
      smd <- (mean(xa) - mean(xb)) / sqrt((va + vb) / 2)
      pair <- paste(groups[a], "vs", groups[b])
      add(term, pair, "smd", smd)
      smds[pair] <- smd
    }
  }
  if (length(smds)) add(term, if (length(smds) > 1) "mean of pairs" else names(smds), "abs_smd", mean(abs(smds)))
  for (g in groups) add(term, g, "missing", sum(is.na(x[data$group == g])))
  if (!binary && any(!is.na(x))) {
    if (ps$median[i] == 1) {
      add(term, "overall", "median", quantile(x, 0.5, na.rm = TRUE, type = 7)[[1]])
    } else {
      add(term, "overall", "mean", mean(x, na.rm = TRUE))
      add(term, "overall", "sd", sd(x, na.rm = TRUE))
    }
  }
}
known <- !is.na(ps$p)
add(ps$term[known], "", "p_holm", p.adjust(ps$p[known], "holm"))
add(ps$term[known], "", "p_bh", p.adjust(ps$p[known], "BH"))
result <- do.call(rbind, out)
write.csv(result, args[3], row.names = FALSE)
