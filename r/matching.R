# Propensity-score matching with MatchIt, sourced by bagkit.rbridge (bagkit/matching.py calls it).
#
# bagkit_match() runs
#   MatchIt::matchit(treat ~ x1 + ... + xk, data, method, distance = "glm", ratio, caliper,
#                    replace, exact, m.order)
# and hands back plain data.frames. The formula is built with reformulate() from SAFE names only:
# the Python side renames the covariates to x1..xk (exact-only variables to e1..ej) and the
# treatment to `treat` before the data reach R, and this function refuses any other name, so no
# user text is ever parsed as R code.
#
# Returns a named list:
#   subjects     row (1-based row of `data`), treat, distance (propensity score), weight,
#                subclass (pair/set id; NA when unmatched or with replacement), discarded
#   pairs        treated_row, control_row, slot (column of match.matrix), one row per match
#   sum_all      summary(m)$sum.all   as term, mean_treated, mean_control, smd, variance_ratio,
#                ecdf_mean, ecdf_max
#   sum_matched  summary(m)$sum.matched, same columns plus std_pair_distance
#   nn           summary(m)$nn as sample (All (ESS), All, Matched (ESS), Matched, Unmatched,
#                Discarded), control, treated
#   terms        term, variable, level: which covariate or exact variable (and factor level) each
#                balance row is (MatchIt balances exact variables too)
#   version      MatchIt's version
#   caliper_width  the caliper on the propensity score in its own units (m$caliper), when one was asked for
#   distance_scaled  TRUE when this MatchIt truncates distances (see bagkit_matchit_truncates) and the
#                score was handed over scaled
#   seconds_matchit, seconds_summary   elapsed time of matchit() and of summary() (for benchmarks)

.bagkit_safe_name <- "^[xe][0-9]+$"

# MatchIt 4.5.1-4.5.3 built on some systems call C's integer abs() on propensity-score
# differences (MatchIt #163, fixed in 4.5.4 by std::abs): every difference below 1 becomes 0, so
# "nearest" takes the left neighbour instead of the nearest and no caliper ever bites. A three-row
# probe tells whether this MatchIt has the bug; when it has, bagkit_match hands MatchIt its own
# glm propensity score multiplied by .bagkit_distance_scale (differences then truncate at 1e-9)
# and divides the distances, caliper and distance means back. Nothing else changes: same
# score, same order, same ties, same balance statistics (all of them scale-free).
.bagkit_distance_scale <- 1e9
.bagkit_state <- new.env()

bagkit_matchit_truncates <- function() {
  if (is.null(.bagkit_state$truncates)) {
    probe <- data.frame(treat = c(1, 0, 0), x = c(0, 1, 2))  # treated at 0.45; controls at 0.10, 0.50
    m <- suppressWarnings(MatchIt::matchit(treat ~ x, data = probe, method = "nearest",
                                           distance = c(0.45, 0.10, 0.50)))
    .bagkit_state$truncates <- !identical(unname(m$match.matrix[1, 1]), "3")
  }
  .bagkit_state$truncates
}

.bagkit_balance_frame <- function(x) {
  columns <- c("Means Treated" = "mean_treated", "Means Control" = "mean_control",
               "Std. Mean Diff." = "smd", "Var. Ratio" = "variance_ratio", "eCDF Mean" = "ecdf_mean",
               "eCDF Max" = "ecdf_max", "Std. Pair Dist." = "std_pair_distance")
  out <- data.frame(term = rownames(x), stringsAsFactors = FALSE)
  for (name in colnames(x)) {
    if (name %in% names(columns)) out[[columns[[name]]]] <- as.numeric(x[, name])
  }
  rownames(out) <- NULL
  out
}

.bagkit_terms <- function(data, covariates) {
  term <- "distance"
  variable <- "distance"
  level <- NA_character_
  for (name in covariates) {
    values <- data[[name]]
    if (is.factor(values) || is.character(values) || is.logical(values)) {
      levels <- if (is.factor(values)) levels(values) else sort(unique(as.character(values)))
      if (is.logical(values)) levels <- c("FALSE", "TRUE")
      term <- c(term, paste0(name, levels))
      variable <- c(variable, rep(name, length(levels)))
      level <- c(level, levels)
    } else {
      term <- c(term, name)
      variable <- c(variable, name)
      level <- c(level, NA_character_)
    }
  }
  data.frame(term = term, variable = variable, level = level, stringsAsFactors = FALSE)
}

bagkit_match <- function(data, covariates, method = "nearest", ratio = 1, caliper = NULL,
                         replace = FALSE, exact = NULL, m_order = "data", seed = NULL) {
  if (!requireNamespace("MatchIt", quietly = TRUE)) {
    stop("R package MatchIt is not installed (apt-get install r-cran-matchit)")
  }
  covariates <- as.character(covariates)
  exact <- if (is.null(exact) || length(exact) == 0) NULL else as.character(exact)
  unsafe <- c(covariates, exact)[!grepl(.bagkit_safe_name, c(covariates, exact))]
  if (length(unsafe) > 0) {
    stop("bagkit_match accepts only the safe names x1..xk / e1..ej; got: ",
         paste(encodeString(unsafe, quote = "'"), collapse = ", "))
  }
  absent <- setdiff(c("treat", covariates, exact), names(data))
  if (length(absent) > 0) stop("columns missing from the data sent to R: ", paste(absent, collapse = ", "))
  data <- as.data.frame(data)
  rownames(data) <- as.character(seq_len(nrow(data)))
  formula <- stats::reformulate(covariates, response = "treat")
  exact_formula <- if (is.null(exact)) NULL else stats::reformulate(exact)
  if (!is.null(seed)) set.seed(as.integer(seed))
  started <- proc.time()[["elapsed"]]
  truncates <- bagkit_matchit_truncates()
  distance <- "glm"
  scale <- 1
  if (truncates) {
    scale <- .bagkit_distance_scale
    distance <- as.numeric(MatchIt::matchit(formula, data = data, method = NULL, distance = "glm")$distance) * scale
  }
  m <- MatchIt::matchit(formula, data = data, method = method, distance = distance,
                        ratio = as.integer(ratio), caliper = caliper, replace = as.logical(replace),
                        exact = exact_formula, m.order = m_order)
  seconds_matchit <- proc.time()[["elapsed"]] - started
  s <- summary(m)
  seconds_summary <- proc.time()[["elapsed"]] - started - seconds_matchit
  unscale <- function(frame) {
    row <- frame$term == "distance"
    for (column in intersect(c("mean_treated", "mean_control"), names(frame))) {
      frame[[column]][row] <- frame[[column]][row] / scale
    }
    frame
  }

  subclass <- if (is.null(m$subclass)) rep(NA_character_, nrow(data)) else as.character(m$subclass)
  discarded <- if (is.null(m$discarded)) rep(FALSE, nrow(data)) else as.logical(m$discarded)
  subjects <- data.frame(row = seq_len(nrow(data)), treat = as.integer(data$treat),
                         distance = as.numeric(m$distance) / scale, weight = as.numeric(m$weights),
                         subclass = subclass, discarded = discarded, stringsAsFactors = FALSE)

  mm <- m$match.matrix
  if (is.null(mm)) {
    pairs <- data.frame(treated_row = integer(), control_row = integer(), slot = integer())
  } else {
    treated_row <- rep(as.integer(rownames(mm)), times = ncol(mm))
    control_row <- suppressWarnings(as.integer(as.vector(mm)))
    slot <- rep(seq_len(ncol(mm)), each = nrow(mm))
    keep <- !is.na(control_row)
    pairs <- data.frame(treated_row = treated_row[keep], control_row = control_row[keep],
                        slot = slot[keep])
  }

  nn <- data.frame(sample = rownames(s$nn), control = as.numeric(s$nn[, "Control"]),
                   treated = as.numeric(s$nn[, "Treated"]), stringsAsFactors = FALSE)
  list(subjects = subjects, pairs = pairs, sum_all = unscale(.bagkit_balance_frame(s$sum.all)),
       sum_matched = unscale(.bagkit_balance_frame(s$sum.matched)), nn = nn,
       terms = .bagkit_terms(data, unique(c(covariates, exact))),
       version = as.character(utils::packageVersion("MatchIt")),
       caliper_width = if (is.null(m$caliper)) NULL else
         as.numeric(m$caliper[names(m$caliper) %in% c("", "distance")])[1] / scale,
       distance_scaled = truncates,
       seconds_matchit = seconds_matchit, seconds_summary = seconds_summary)
}
