"""The ``bagkit`` command: parse options, call the API, say where the files went. No logic of its own."""
from __future__ import annotations

import os
import sys
import time
import warnings
from pathlib import Path

import click

import bagkit
from bagkit.analyses import AnalysisOptions, Table1Options
from bagkit.analyses.bias import BIAS_CORRECTIONS
from bagkit.cli.predictors import COMMANDS as PREDICTOR_COMMANDS
from bagkit.cli.predictors import _make_predictor, _params, default_cache_dir, predictor_options
from bagkit.cli.preprocess import COMMANDS as PREPROCESS_COMMANDS
from bagkit.cli.preprocess import (
    check_preprocess_options,
    predict_scans,
    preprocess_options,
    preprocess_requested,
)
from bagkit.errors import BagkitError
from bagkit.io.outputs import check_output_folder
from bagkit.stats.cutoffs import DIRECTIONS, RULES
from bagkit.stats.matching import M_ORDERS

_DEFAULTS = AnalysisOptions()


def _csv_list(value: str | None) -> tuple[str, ...] | None:
    if value is None:
        return None
    items = tuple(v.strip() for v in value.split(",") if v.strip())
    return items or None


def _column_pairs(pairs: tuple[str, ...]) -> dict[str, str]:
    mapping = {}
    for pair in pairs:
        if "=" not in pair:
            raise click.BadParameter(f"'{pair}' should be CANONICAL=YOURS, e.g. age=AgeAtScan",
                                     param_hint="--column")
        canonical, yours = pair.split("=", 1)
        mapping[canonical.strip()] = yours.strip()
    return mapping


class _Progress:
    """Stage messages on stderr with elapsed time; silent with --quiet."""

    def __init__(self, quiet: bool):
        self.quiet, self.start = quiet, time.perf_counter()

    def __call__(self, message: str) -> None:
        if not self.quiet:
            click.echo(f"[{time.perf_counter() - self.start:6.1f}s] {message}", err=True)


INTERRUPTED_EXIT = 130  # 128 + SIGINT, as shells report a Ctrl-C


class _BagkitGroup(click.Group):
    """The main group: whatever a command raises reaches the user as one line, never a traceback.

    Ctrl-C → "interrupted", exit 130 (outputs are swapped into place only at the very end, so an
    interrupted run leaves earlier outputs as they were); a BagkitError → its message, exit 1;
    an OSError → the file and the system's reason, exit 1; anything else → a short message that
    points at ``--debug`` (or BAGKIT_DEBUG=1), which shows the traceback instead.
    """

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except KeyboardInterrupt:
            click.echo("\nbagkit: interrupted; nothing more was written, and outputs not reported as "
                       "written above are as they were.", err=True)
            ctx.exit(INTERRUPTED_EXIT)
        except Exception as error:
            if ctx.params.get("debug") or os.environ.get("BAGKIT_DEBUG", "") not in ("", "0"):
                raise
            raise click.ClickException(_message(error)) from None


def _message(error: Exception) -> str:
    if isinstance(error, BagkitError):
        return str(error)
    if isinstance(error, OSError) and error.strerror:
        where = " -> ".join(str(f) for f in (error.filename, error.filename2) if f)
        return f"{where + ': ' if where else ''}{error.strerror} (run with --debug for the traceback)"
    return (f"unexpected {type(error).__name__}: {error} — this is a bug in bagkit; please report it with "
            f"the traceback that `bagkit --debug ...` shows.")


@click.group(cls=_BagkitGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(bagkit.__version__, prog_name="bagkit")
@click.option("--debug", is_flag=True, help="Show the Python traceback of an unexpected error (also: BAGKIT_DEBUG=1).")
def cli(debug):
    """bagkit: brain-age-gap analyses from a cohort table to a PDF report (the paper's Tables 1-3)."""


@cli.command()
@click.argument("cohort_file", type=click.Path(exists=True))
@click.option("--visits", type=click.Path(exists=True, dir_okay=False),
              help="Visits table (subject_id, years, edss): EDSS worsening is derived by the paper's rule.")
@click.option("--control", default="HC", show_default=True, help="Label of the control group.")
@click.option("--no-control", is_flag=True, help="The cohort has no control group.")
@click.option("--groups", help="Groups to analyse, in this order, comma-separated (default: all, file order).")
@click.option("--column", "columns", multiple=True, metavar="CANONICAL=YOURS",
              help="Your column name for a bagkit column (repeatable), e.g. --column age=AgeAtScan.")
@click.option("--mapping", type=click.Path(exists=True, dir_okay=False),
              help="JSON {\"columns\": {...}, \"labels\": {...}} or two-column CSV mapping your names.")
@click.option("-o", "--out", default="bagkit-report", show_default=True, type=click.Path(file_okay=False),
              help="Output folder (report.pdf/.docx/.html, tables/, table1.csv, results.csv, figures/).")
@click.option("--force", is_flag=True, help="Replace the output folder if it exists.")
@click.option("--formats", default="pdf,docx,html", show_default=True, metavar="F1,F2",
              help="Report formats to write: any of pdf, docx, html (tables/*.csv and results.csv always).")
@click.option("--match", "match_groups", metavar="A,B",
              help="The two groups to propensity-match (default: the first two patient groups).")
@click.option("--covariates", metavar="C1,C2,...",
              help=f"Matching covariates (canonical names; default: {','.join(_DEFAULTS.covariates_to_match)}). Groups, "
                   f"covariates or exact variables you give must be matchable, or the run stops with an error.")
@click.option("--ratio", type=click.IntRange(1, 10),
              help=f"Controls per treated (default: {_DEFAULTS.match_ratio}).")
@click.option("--caliper", type=click.FloatRange(min=0, min_open=True),
              help="Caliper in SDs of the propensity score (default: none).")
@click.option("--replace", is_flag=True, default=None, help="Match with replacement.")
@click.option("--exact", metavar="C1,C2", help="Covariates to match exactly on.")
@click.option("--m-order", type=click.Choice(M_ORDERS), help=f"MatchIt's m.order (default: {_DEFAULTS.match_order}).")
@click.option("--cutoff-rule", type=click.Choice(RULES),
              help=f"BAG cutoff for Kaplan-Meier: specificity >= --specificity (paper) or Youden "
                   f"(default: {_DEFAULTS.cutoff_rule}).")
@click.option("--specificity", type=click.FloatRange(0.5, 1.0),
              help=f"Specificity the spec80 cutoff must reach (default: {_DEFAULTS.specificity_at_least}).")
@click.option("--bias-correction", type=click.Choice(BIAS_CORRECTIONS),
              help=f"Age-bias correction of BAG fitted on the controls (linear: Cole/de Lange, brain_age = "
                   f"a*age + b; bag: Smith/Beheshti, BAG = a*age + b) and used by every analysis "
                   f"(default: {_DEFAULTS.bias_correction}).")
@click.option("--bias-folds", type=click.IntRange(2, 1000),
              help=f"Folds of the cross-fitting that gives the controls their own corrected BAG "
                   f"(default: {_DEFAULTS.bias_folds}).")
@click.option("--bias-calibration", type=click.Path(exists=True, dir_okay=False),
              help="Fit the correction on this table of healthy subjects (columns age, brain_age) instead of "
                   "the cohort's controls.")
@click.option("--welch", is_flag=True, default=None,
              help="Welch's t-test (unequal variances; R t.test(var.equal = FALSE)) instead of Student's for "
                   "continuous comparisons of two groups (Table 1 with two groups, Table 2, subgroups).")
@click.option("--roc-direction", type=click.Choice(tuple(DIRECTIONS)),
              help=f"Which BAG marks EDSS worsening in the ROC: higher (pROC direction \"<\"), lower (\">\") or "
                   f"auto (pROC's median rule, biased upwards) (default: {_DEFAULTS.roc_direction}).")
@click.option("--seed", type=int, help=f"Seed for matching ties and bootstraps (default: {_DEFAULTS.seed}).")
@click.option("--table1-smd", is_flag=True, help="Table 1: add a column of standardized mean differences.")
@click.option("--table1-missing", is_flag=True, help="Table 1: add a column of missing counts (and n per cell).")
@click.option("--table1-overall", is_flag=True, help="Table 1: add a column describing every subject.")
@click.option("--table1-p-adjust", type=click.Choice(["holm", "BH"]),
              help="Table 1: adjust the variable-level p values (R's p.adjust), shown beside them.")
@predictor_options(in_report=True)
@click.option("--example-subjects", metavar="ID1,ID2", help="Figure 1 D-G: show these subjects' input slices and "
              "age distributions (default: per group the smallest and the largest BAG); needs --predictor.")
@preprocess_options
@click.option("-q", "--quiet", is_flag=True, help="No progress messages.")
def report(cohort_file, visits, control, no_control, groups, columns, mapping, out, force, formats, match_groups,
           covariates, ratio, caliper, replace, exact, m_order, cutoff_rule, specificity, bias_correction,
           bias_folds, bias_calibration, welch, roc_direction, seed, table1_smd, table1_missing, table1_overall,
           table1_p_adjust, predictor_name, weights, model, params, cache_dir,
           scheduler, workers, example_subjects, quiet):
    """Analyse COHORT_FILE (CSV/TSV, or a BIDS folder) and write the report, table1.csv and results.csv.

    With --predictor, brain age is predicted from the T1 scans named in the `scan`
    column (paths relative to COHORT_FILE) before the analysis. A BIDS folder gives
    participants.tsv and each subject's T1 (first session and run, stated in the notes)."""
    say = _Progress(quiet)
    if predictor_name is None and (weights or model or params or scheduler or workers or preprocess_requested()
                                   or example_subjects):
        raise click.UsageError("--example-subjects, --weights, --model, --param, --scheduler, --workers and --preprocess "
                               "need --predictor NAME (see `bagkit predictors`).")
    try:
        from bagkit.report import check_formats

        formats = check_formats(_csv_list(formats) or ())  # refused before any work is done
        # refusals about the output folder come before minutes of work, not after
        check_output_folder(out, inputs=[cohort_file, visits, mapping], force=force)
        say(f"reading {cohort_file}")
        cohort = bagkit.read_cohort(cohort_file, control=None if no_control else control,
                                    columns=_column_pairs(columns), visits=visits, groups=_csv_list(groups),
                                    mapping_file=mapping)
        if example_subjects is not None:
            from bagkit.predictors.examples import check_example_subjects

            check_example_subjects(cohort.data, _csv_list(example_subjects))  # before minutes of prediction
        if predictor_name is not None:
            cohort = _with_predictions(cohort, cohort_file, predictor_name, weights, model, params, cache_dir,
                                       quiet, say, scheduler=scheduler, workers=workers,
                                       example_subjects=_csv_list(example_subjects))
        elif cohort.has("scan") and not cohort.has("brain_age"):
            say("the cohort has scans but no brain_age: give --predictor NAME to predict it")
        say(f"{len(cohort)} subjects in {len(cohort.groups)} groups: "
            + ", ".join(f"{g} {len(cohort.group(g))}" for g in cohort.groups))
        match = _csv_list(match_groups)
        if match is not None and len(match) != 2:
            raise click.BadParameter("give exactly two groups, e.g. --match NMOSD,RRMS", param_hint="--match")
        if covariates is not None and not _csv_list(covariates):
            raise click.BadParameter("give at least one covariate, e.g. --covariates sex,edss",
                                     param_hint="--covariates")
        # Only what the user gave overrides AnalysisOptions' defaults (their one source).
        given = dict(match_groups=match, match_covariates=_csv_list(covariates), match_ratio=ratio,
                     match_caliper=caliper, match_replace=replace, match_exact=_csv_list(exact),
                     match_order=m_order, cutoff_rule=cutoff_rule, specificity_at_least=specificity,
                     roc_direction=roc_direction, welch=welch, bias_correction=bias_correction,
                     bias_folds=bias_folds, bias_calibration=bias_calibration, seed=seed)
        given["table1"] = Table1Options(smd=table1_smd, missing=table1_missing, overall=table1_overall,
                                        p_adjust=table1_p_adjust)
        options = AnalysisOptions(**{name: value for name, value in given.items() if value is not None})
        ahead = {}
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            results = bagkit.analyze(cohort, options, progress=say,
                                     while_waiting=lambda partial, busy: ahead.update(
                                         figures=_prepare_report(partial, busy, formats, say)))
            say("writing report")
            written = results.write(out, force=force, progress=say, formats=formats, figures=ahead.get("figures"))
        for warning in _unique(caught):
            click.echo(f"warning: {warning}", err=True)
    except BagkitError as error:
        raise click.ClickException(str(error)) from None
    for note in results.skipped:
        click.echo(f"note: {note}", err=True)
    for document in (written.pdf, written.docx, written.html):
        if document is not None:
            click.echo(f"wrote {document}")
    click.echo(f"wrote {written.table1_csv} and {len(written.tables)} table(s) to {written.out / 'tables'}")
    click.echo(f"wrote {written.results_csv} ({len(results.tidy())} numbers)")
    if written.figures:
        click.echo(f"wrote {len(written.figures)} figure(s) to {written.out / 'figures'}")


def _with_predictions(cohort, cohort_file, predictor_name, weights, model, params, cache_dir, quiet, say,
                      scheduler=None, workers=None, example_subjects=None):
    """The cohort with brain age from the predictor (cached; see bagkit.predictors.predict_cohort),
    after the raw-scan preprocessing when --preprocess was given, carrying the example subjects'
    input slices and age distributions (Figure 1 D-G; bagkit.predictors.examples)."""
    from bagkit.predictors import require_predictions

    cache = Path(cache_dir) if cache_dir else default_cache_dir()
    say(f"brain age: predictor {predictor_name}, cache {cache}")
    check_preprocess_options()
    predictor = _make_predictor(predictor_name, model, weights, _params(params))
    predicted = predict_scans(cohort.data, predictor, base_dir=Path(cohort_file).parent, cache_dir=cache,
                              progress=not quiet, scheduler=scheduler, workers=workers)
    require_predictions(predicted, cohort_file)  # asked for brain age and none came: an error, not a note
    inputs = {role: str(path) for role, path in (("predictor model", model), ("predictor weights", weights)) if path}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cohort = cohort.with_predictions(predicted, predictor_name, inputs)
    for warning in _unique(caught):
        click.echo(f"warning: {warning}", err=True)
    for what, how in cohort.derivations.items():
        if what.startswith("brain age"):
            say(f"{what}: {how}")
    from bagkit.predictors.examples import with_example_inputs

    return with_example_inputs(cohort, predictor, base_dir=Path(cohort_file).parent, subjects=example_subjects,
                               say=say)


def _prepare_report(partial, busy, formats, say):
    """While R's sections run in their second process: import what writing the report needs, then
    draw the figures that need nothing from R, while R is still busy. Returns the FigureStore."""
    _import_renderers(formats)
    from bagkit.report import draw_ahead
    from bagkit.report.figures import FigureStore

    store = FigureStore()
    drawn = draw_ahead(partial, store, busy)
    if drawn:
        say(f"drew {len(drawn)} figure(s) while R computed")
    return store


def _import_renderers(formats) -> None:
    """Import what writing the report needs (matplotlib, reportlab: ~0.5 s) while R's sections
    run in their second process, instead of after them."""
    import importlib

    modules = ["bagkit.report.figures", "bagkit.plots.cohort", "bagkit.plots.matching", "bagkit.plots.outcomes",
               "bagkit.plots.forest", "bagkit.plots.agreement", "matplotlib.backends.backend_agg",
               "matplotlib.backends.backend_pdf", "PIL.PngImagePlugin"]
    per_format = {"pdf": ["bagkit.report.pdf", "pypdf"], "docx": ["bagkit.report.word"], "html": ["bagkit.report.html"]}
    from bagkit.analyses.background import can_fork

    if "pdf" in formats and can_fork():  # report.docx is written by a forked child: python-docx loads there
        per_format["docx"] = []
    modules += [module for f in formats for module in per_format.get(f, [])]
    for name in modules:
        try:
            importlib.import_module(name)
        except ImportError:
            pass  # the write itself will say what is missing
    from matplotlib import font_manager

    font_manager.findfont("DejaVu Sans")  # the font cache, read once


def _unique(caught) -> list[str]:
    return list(dict.fromkeys(str(w.message) for w in caught))


# the predictor commands (predictors, predict, train, lesion-fill, compare); torch-free at import
for _command in PREDICTOR_COMMANDS + PREPROCESS_COMMANDS:
    cli.add_command(_command)


def main() -> None:
    """The ``bagkit`` console command: run it, then leave without tearing the interpreter down.

    Python's finalization frees every object the report made, one by one: ~0.8 s after a report
    on the example cohort, longer than writing report.docx. Every file bagkit writes is closed
    (and renamed into place) before the command returns, so after flushing the standard streams
    and running the exit handlers (logging, temporary folders, R) the process ends at once.

    The cycle collector runs every 20 000 allocations instead of 700 (and its older generations
    twice as rarely): a report allocates millions of objects, few of them in cycles, and each
    collection walks what the analysis keeps alive (0.4 s of collections on the example cohort
    in one process, 0.25 s like this)."""
    import gc

    gc.set_threshold(20_000, 20, 20)
    try:
        cli.main(prog_name="bagkit")  # standalone: always ends by raising SystemExit
        code = 0
    except SystemExit as stop:
        code = stop.code
    _leave(code)


def _leave(code) -> None:
    """sys.exit's meaning of ``code`` (None: 0, text: printed, exit 1), without finalization."""
    if code is None:
        code = 0
    elif not isinstance(code, int):
        print(code, file=sys.stderr)
        code = 1
    try:
        import atexit

        atexit._run_exitfuncs()
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
        os._exit(code & 0xFF)


if __name__ == "__main__":  # pragma: no cover
    main()
