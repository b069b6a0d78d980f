# Sourced by bagkit.rbridge into a private environment (never R's global one).
# bagkit_call runs one function with its arguments, collects R warnings instead of
# printing them, and returns list(value = ..., warnings = character()).

bagkit_call <- function(fun, args) {
  caught <- character()
  value <- withCallingHandlers(
    do.call(fun, args),
    warning = function(w) {
      caught <<- c(caught, conditionMessage(w))
      invokeRestart("muffleWarning")
    }
  )
  list(value = value, warnings = caught)
}

bagkit_has_package <- function(name) {
  requireNamespace(name, quietly = TRUE)
}

bagkit_package_version <- function(name) {
  # read from the installed DESCRIPTION: loading the namespace (pROC: ~0.4 s) is not needed
  if (!nzchar(system.file(package = name))) return(NA_character_)
  as.character(utils::packageVersion(name))
}
