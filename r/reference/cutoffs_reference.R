# ROC, AUC with DeLong CI and cutoffs computed with pROC: the reference tests/test_cutoffs.py compares
# bagkit.cutoffs with.
#
# Usage:
#   Rscript r/reference/cutoffs_reference.R export-asah OUT.csv        # pROC::aSAH as subset, marker, event
#   Rscript r/reference/cutoffs_reference.R roc IN.csv OUT.csv [SPEC]  # SPEC: specificity floor, default 0.8
#
# IN: columns subset, marker, event (1 = event / case, 0 = control). One ROC per subset.
# OUT: tidy rows `analysis, subset, term, contrast, statistic, value` (term "bag"), first line a comment
# with the R and pROC versions:
#   roc    auc, ci_low, ci_high          auc(r), ci.auc(r, method = "delong")   (r <- roc(event, marker),
#          direction_higher_is_event     r$direction == "<"                     direction = "auto")
#   cutoff youden threshold, sens, spec  coords(r, "best", best.method = "youden")[1, ] (+ n_tied rows)
#   cutoff spec80 threshold, sens, spec  a <- coords(r, x = "all"); among a$specificity >= SPEC the row with
#                                        the highest sensitivity (ties: the highest specificity)
suppressMessages(library(pROC))
options(warn = 1)
args <- commandArgs(trailingOnly = TRUE)
header <- function(path) writeLines(sprintf("# %s; pROC %s", R.version.string, packageVersion("pROC")), path)

if (args[1] == "export-asah") {
  data(aSAH, package = "pROC")
  event <- as.integer(aSAH$outcome == "Poor")
  long <- do.call(rbind, lapply(c("s100b", "ndka", "age"), function(m)
    data.frame(subset = m, marker = as.numeric(aSAH[[m]]), event = event)))
  write.csv(long, args[2], row.names = FALSE)
  quit(save = "no")
}

input <- read.csv(args[2], stringsAsFactors = FALSE)
spec <- if (length(args) >= 4) as.numeric(args[4]) else 0.8
rows <- list()
add <- function(analysis, subset, contrast, statistic, value)
  rows[[length(rows) + 1]] <<- data.frame(analysis = analysis, subset = subset, term = "bag", contrast = contrast,
                                          statistic = statistic, value = value)
for (s in unique(input$subset)) {
  d <- input[input$subset == s, ]
  r <- roc(d$event, d$marker, levels = c(0, 1), direction = "auto", quiet = TRUE)
  ci <- ci.auc(r, method = "delong")
  add("roc", s, "", "auc", as.numeric(auc(r)))
  add("roc", s, "", "ci_low", ci[1])
  add("roc", s, "", "ci_high", ci[3])
  add("roc", s, "", "direction_higher_is_event", as.numeric(r$direction == "<"))
  best <- coords(r, "best", best.method = "youden", transpose = FALSE)
  add("cutoff", s, "youden", "threshold", best$threshold[1])
  add("cutoff", s, "youden", "sensitivity", best$sensitivity[1])
  add("cutoff", s, "youden", "specificity", best$specificity[1])
  add("cutoff", s, "youden", "n_tied", nrow(best))
  a <- coords(r, x = "all", transpose = FALSE)
  ok <- a[a$specificity >= spec - 1e-12, ]
  ok <- ok[ok$sensitivity >= max(ok$sensitivity) - 1e-12, ]
  pick <- ok[which.max(ok$specificity), ]
  add("cutoff", s, "spec80", "threshold", pick$threshold)
  add("cutoff", s, "spec80", "sensitivity", pick$sensitivity)
  add("cutoff", s, "spec80", "specificity", pick$specificity)
}
header(args[3])
suppressWarnings(write.table(do.call(rbind, rows), args[3], sep = ",", row.names = FALSE, append = TRUE,
                             qmethod = "double"))
