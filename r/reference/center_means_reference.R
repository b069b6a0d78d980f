# Figure 1C's numbers with base R: n, mean and standard error of BAG per group and center
# (the reference of tests/test_report_formats.py; cells with fewer than 2 subjects left out).
#
# Usage: Rscript r/reference/center_means_reference.R BAG.csv OUT.csv   (BAG.csv: group, center, bag)
args <- commandArgs(trailingOnly = TRUE)
d <- read.csv(args[1], stringsAsFactors = FALSE)
a <- aggregate(bag ~ group + center, d, function(v) c(n = length(v), mean = mean(v), se = sd(v) / sqrt(length(v))))
out <- data.frame(group = a$group, center = a$center, n = a$bag[, "n"], mean = a$bag[, "mean"], se = a$bag[, "se"])
write.csv(out[out$n >= 2, ], args[2], row.names = FALSE)
