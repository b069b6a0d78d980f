# The effect after matching, sourced by bagkit.rbridge (bagkit/stats/effects.py calls it).
#
# bagkit_matched_effect() runs, on the matched set (MatchIt's match.data()):
#   fit <- lm(y ~ treat [+ x1 + ... + xk], data = d, weights = weights)
#   v   <- sandwich::vcovCL(fit, cluster = ~subclass)          # its defaults: HC1, cadjust = TRUE
#   lmtest::coeftest(fit, vcov. = v); lmtest::coefci(fit, vcov. = v, level = level)
# as MatchIt's vignette "Estimating Effects After Matching" recommends for 1:k matching without
# replacement (pair-clustered standard errors). The formula is built with reformulate() from SAFE
# names only (y, treat, x1..xk, subclass, weights); any other name is refused.
#
# Returns list(estimate, se, t, p, ci_low, ci_high, df, n, clusters, sandwich, lmtest) for `treat`.

.bagkit_effect_safe <- "^x[0-9]+$"

bagkit_matched_effect <- function(data, covariates = NULL, level = 0.95) {
  for (package in c("sandwich", "lmtest")) {
    if (!requireNamespace(package, quietly = TRUE)) {
      stop("R package ", package, " is not installed (apt-get install r-cran-", package, ")")
    }
  }
  covariates <- if (is.null(covariates) || length(covariates) == 0) character() else as.character(covariates)
  unsafe <- covariates[!grepl(.bagkit_effect_safe, covariates)]
  if (length(unsafe) > 0) {
    stop("bagkit_matched_effect accepts only the safe names x1..xk; got: ",
         paste(encodeString(unsafe, quote = "'"), collapse = ", "))
  }
  absent <- setdiff(c("y", "treat", "subclass", "weights", covariates), names(data))
  if (length(absent) > 0) stop("columns missing from the data sent to R: ", paste(absent, collapse = ", "))
  d <- as.data.frame(data)
  d$subclass <- factor(d$subclass)
  fit <- stats::lm(stats::reformulate(c("treat", covariates), response = "y"), data = d, weights = weights)
  if (is.na(stats::coef(fit)[["treat"]])) stop("the group coefficient is not estimable (aliased with a covariate)")
  v <- sandwich::vcovCL(fit, cluster = ~subclass)
  test <- lmtest::coeftest(fit, vcov. = v)
  ci <- lmtest::coefci(fit, vcov. = v, level = level)
  list(estimate = unname(test["treat", 1]), se = unname(test["treat", 2]), t = unname(test["treat", 3]),
       p = unname(test["treat", 4]), ci_low = unname(ci["treat", 1]), ci_high = unname(ci["treat", 2]),
       df = fit$df.residual, n = stats::nobs(fit), clusters = nlevels(d$subclass),
       sandwich = as.character(utils::packageVersion("sandwich")),
       lmtest = as.character(utils::packageVersion("lmtest")))
}
