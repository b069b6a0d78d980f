"""Predictor commands of the ``bagkit`` CLI: predictors, predict, train, lesion-fill, compare.

Plain click commands (not a group), collected in :data:`COMMANDS`; ``bagkit.cli``
adds each to the main group. They parse options, call the API and say where the
files went. Nothing here imports torch: a predictor is imported only when a
command asks for it by name.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import click
import pandas as pd

from bagkit.cli.preprocess import check_preprocess_options, predict_scans, preprocess_options
from bagkit.errors import BagkitError, PredictorError
from bagkit.io.outputs import atomic_output, checked_output
from bagkit.io.tables import line_numbers, spreadsheet_safe_frame


def _read_table(path: str, what: str, numeric: tuple[str, ...] = ()) -> pd.DataFrame:
    """The one table reader (``bagkit.io.tables``), its refusals as CLI errors."""
    from bagkit.io.tables import read_table

    try:
        return read_table(Path(path), what, numeric=numeric)
    except BagkitError as error:
        _fail(error)


def _params(pairs: tuple[str, ...]) -> dict:
    params = {}
    for pair in pairs:
        if "=" not in pair:
            raise click.BadParameter(f"'{pair}' should be NAME=VALUE, e.g. n_components=50", param_hint="--param")
        key, value = pair.split("=", 1)
        try:
            params[key.strip()] = json.loads(value)
        except ValueError:
            params[key.strip()] = value
    return params


def _ints(value: str | None, what: str, count: int):
    if value is None:
        return None
    try:
        numbers = tuple(float(v) for v in value.split(","))
    except ValueError:
        raise click.BadParameter(f"'{value}' should be {count} comma-separated numbers", param_hint=what)
    if len(numbers) != count:
        raise click.BadParameter(f"'{value}' should be {count} comma-separated numbers", param_hint=what)
    return numbers


def _make_predictor(name: str, model: str | None, weights: str | None, params: dict):
    """The predictor asked for, checked once (weights or model read and validated, parameters
    valid) before any scan is read: a predictor that cannot predict is one PredictorError."""
    from bagkit.predictors import get_predictor, load_predictor
    from bagkit.predictors.registry import predictor_class

    if weights is not None and model is not None:
        raise click.UsageError("give --weights or --model, not both (--model is a file written by `bagkit train`).")
    if weights is not None:
        if "weights" not in predictor_class(name)._param_names():
            raise PredictorError(f"predictor {name!r} takes no --weights ({weights}); give its model file with "
                                 f"--model (a file written by `bagkit train -p {name}`).")
        params = {**params, "weights": weights}
    try:
        predictor = get_predictor(name, **params) if model is None else load_predictor(name, model, **params)
        predictor.check()
        return predictor
    except BagkitError:
        raise
    except Exception as error:  # a plug-in's own failure on a bad file: name the file, no traceback
        given = model or weights
        lines = str(error).strip().splitlines() or [""]
        detail = " ".join(line.strip() for line in lines[:2]) + (f" … ({len(lines) - 2} more lines)"
                                                                if len(lines) > 2 else "")
        raise PredictorError(f"{given + ': ' if given else ''}the {name!r} predictor could not be set up "
                             f"from it ({type(error).__name__}: {detail}).") from error


def _fail(error: BagkitError):
    raise click.ClickException(str(error))


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "bagkit" / "predictions"


def predictor_options(in_report: bool = False):
    """The options that choose and configure a predictor, shared by ``bagkit report`` (where
    ``--predictor`` is optional and the others need it) and ``bagkit predict``."""
    def needs(text: str) -> str:
        return f"With --predictor: {text}" if in_report else text[0].upper() + text[1:]

    if in_report:
        name = click.option(
            "-p", "--predictor", "predictor_name", metavar="NAME",
            help="Predict brain_age / brain_age_sd from the `scan` column with this installed predictor "
                 "(see `bagkit predictors`); predictions are cached, so a second run does not predict again.")
    else:
        name = click.option("-p", "--predictor", "predictor_name", default="sfcn", show_default=True,
                            help="Installed predictor name (see `bagkit predictors`).")
    options = [
        name,
        click.option("--weights", type=click.Path(exists=True, dir_okay=False),
                     help=needs("weights file (SFCN: e.g. the UK Biobank run_20190719_00_epoch_best_mae.p).")),
        click.option("--model", type=click.Path(exists=True, dir_okay=False),
                     help=needs("a model saved by `bagkit train` (loaded with the predictor's load()).")),
        click.option("--param", "params", multiple=True, metavar="NAME=VALUE",
                     help=needs("a predictor parameter (repeatable; JSON values), e.g. age_range=[42,82].")),
        click.option("--cache-dir", type=click.Path(file_okay=False),
                     help="Prediction cache (default: $XDG_CACHE_HOME/bagkit/predictions, i.e. "
                          "~/.cache/bagkit/predictions); entries are keyed by scan content and predictor."),
        click.option("--scheduler", metavar="ADDRESS",
                     help=needs("predict on an existing Dask cluster: its scheduler address (tcp://host:8786) or "
                                "scheduler file. Workers need bagkit, the predictor and the scans at the same "
                                "paths; results go to the cache here as they finish. With --preprocess the workers "
                                "preprocess the raw scans too and WRITE them into --preprocess-dir, which must then "
                                "be shared with them at the same path (see docs/distributed.md).")),
        click.option("--workers", type=click.IntRange(min=1), metavar="N",
                     help=needs("predict (and with --preprocess, preprocess) on a Dask cluster of N worker "
                                "processes on this machine, one cluster for both (with --scheduler: wait for N "
                                "workers to join). Needs `pip install 'bagkit[distributed]'`.")),
    ]

    def decorate(command):
        for option in reversed(options):
            command = option(command)
        return command

    return decorate


_force = click.option("--force", is_flag=True, help="Replace the output file(s) if they exist.")


def _output(path, inputs, force, what):
    """A checked output path (never an input; an existing file only with --force)."""
    try:
        return checked_output(path, inputs=inputs, force=force, what=what)
    except BagkitError as error:
        _fail(error)


@click.command("predictors")
def predictors_command():
    """List the installed brain-age predictors (without importing them)."""
    from bagkit.predictors import available_predictors

    found = available_predictors()
    if not found:
        click.echo("no brain-age predictors installed (try: pip install -e predictors/sfcn -e predictors/gpr)")
        return
    width = max(len(name) for name in found)
    for name, entry in found.items():
        dist = getattr(getattr(entry, "dist", None), "name", "") or ""
        click.echo(f"{name:<{width}}  {entry.value}" + (f"  ({dist})" if dist else ""))


@click.command("predict")
@click.argument("cohort_file", type=click.Path(exists=True, dir_okay=False))
@predictor_options()
@preprocess_options
@click.option("-o", "--out", default="predictions.csv", show_default=True, type=click.Path(dir_okay=False),
              help="CSV of subject_id, brain_age, brain_age_sd, prediction_error.")
@_force
@click.option("--quiet", is_flag=True, help="No progress bar.")
def predict_command(cohort_file, predictor_name, weights, model, params, cache_dir, scheduler, workers, out, force,
                    quiet):
    """Predict brain age for every scan of COHORT_FILE (a table with a `scan` column,
    paths relative to the table)."""
    from bagkit.predictors import require_predictions

    out = _output(out, [cohort_file], force, "predictions table")
    frame = _read_table(cohort_file, "cohort")
    try:
        check_preprocess_options()
        predictor = _make_predictor(predictor_name, model, weights, _params(params))
        result = predict_scans(frame, predictor, base_dir=Path(cohort_file).parent,
                               cache_dir=Path(cache_dir) if cache_dir else default_cache_dir(), progress=not quiet,
                               scheduler=scheduler, workers=workers)
        failed = result[result.prediction_error != ""]
        for _, row in failed.iterrows():
            click.echo(f"skipped {row.get('subject_id', '')}: {row.prediction_error}", err=True)
        require_predictions(result, cohort_file)  # every scan failed: nothing is written, exit 1
    except BagkitError as error:
        _fail(error)
    with atomic_output(out) as tmp:
        spreadsheet_safe_frame(result).to_csv(tmp, index=False)
    run = result.attrs.get("prediction_run")
    if run:
        click.echo(f"{run['engine']} {run['distributed_version']} ({run['cluster']}, scheduler {run['scheduler']}, "
                   f"{run['workers']} worker(s)): {run['scans_predicted']} scan(s) predicted, "
                   f"{run['scans_from_cache']} from the cache, in {run['seconds']:.1f} s")
    click.echo(f"wrote {out} ({len(result) - len(failed)} predicted, {len(failed)} failed)")


@click.command("train")
@click.argument("cohort_file", type=click.Path(exists=True, dir_okay=False))
@click.option("-p", "--predictor", "predictor_name", default="sfcn", show_default=True, help="Predictor to train.")
@click.option("--control", default="HC", show_default=True, help="Label of the controls it is trained on.")
@click.option("-o", "--out", required=True, type=click.Path(dir_okay=False), help="Where to save the model.")
@click.option("--epochs", type=int, help="SFCN: maximum epochs (default 130).")
@click.option("--lr", type=float, help="SFCN: SGD learning rate (default 0.01).")
@click.option("--batch-size", type=int, help="SFCN: batch size (default 8).")
@click.option("--patience", type=int, help="SFCN: early stopping after this many epochs without gain.")
@click.option("--checkpoint-dir", type=click.Path(file_okay=False), help="SFCN: write last.pt/best.pt here.")
@click.option("--resume", is_flag=True, help="SFCN: continue from CHECKPOINT_DIR/last.pt.")
@click.option("--age-range", metavar="START,END", help="SFCN: age bins, e.g. 6,90 (the paper).")
@click.option("--input-shape", metavar="X,Y,Z", help="Preprocessed input shape (default 160,192,160).")
@click.option("--param", "params", multiple=True, metavar="NAME=VALUE", help="Other predictor parameters (JSON).")
@_force
@click.option("--quiet", is_flag=True, help="No progress bar.")
def train_command(cohort_file, predictor_name, control, out, epochs, lr, batch_size, patience, checkpoint_dir,
                  resume, age_range, input_shape, params, force, quiet):
    """Train a predictor on the controls of COHORT_FILE (columns group, age, scan)."""
    from bagkit.predictors import get_predictor
    from bagkit.predictors.registry import predictor_class

    _output(out, [cohort_file], True, "model")  # never an input or a folder (an existing file: below)
    frame = _read_table(cohort_file, "cohort", numeric=("age",))
    missing = [c for c in ("group", "age", "scan") if c not in frame.columns]
    if missing:
        raise click.ClickException(f"{cohort_file}: training needs the columns {', '.join(missing)}.")
    controls = frame[(frame["group"].astype(str) == control) & frame["scan"].notna() & frame["age"].notna()]
    if len(controls) < 3:
        raise click.ClickException(f"{cohort_file}: only {len(controls)} controls labelled {control!r} with scan "
                                   f"and age; need at least 3.")
    options = _params(params)
    for key, value in (("epochs", epochs), ("lr", lr), ("batch_size", batch_size), ("patience", patience),
                       ("checkpoint_dir", checkpoint_dir)):
        if value is not None:
            options[key] = value
    if resume:
        options["resume"] = True
    if age_range:
        options["age_range"] = _ints(age_range, "--age-range", 2)
    if input_shape:
        options["input_shape"] = tuple(int(v) for v in _ints(input_shape, "--input-shape", 3))
    base = Path(cohort_file).parent
    scans = [str(p if Path(p).is_absolute() else base / p) for p in controls["scan"].astype(str)]
    try:
        if quiet and "progress" in predictor_class(predictor_name)._param_names():
            options["progress"] = False
        predictor = get_predictor(predictor_name, **options)
        # before hours of training, not after: the file save() will write (gpr adds .npz)
        _output(getattr(predictor, "model_path", Path)(out), [cohort_file], force, "model")
        predictor.fit(scans, controls["age"].astype(float).to_numpy())
        written = predictor.save(out)
    except BagkitError as error:
        _fail(error)
    mae = getattr(predictor, "validation_mae_", None)
    click.echo(f"trained {predictor_name} on {len(controls)} controls"
               + (f" (best validation MAE {mae:.2f} y)" if mae is not None else ""))
    click.echo(f"wrote {written}")


@click.command("lesion-fill")
@click.argument("t1", type=click.Path(exists=True, dir_okay=False))
@click.argument("mask", type=click.Path(exists=True, dir_okay=False))
@click.option("-o", "--out", required=True, type=click.Path(dir_okay=False), help="The filled T1 (new file).")
@click.option("--wm-mask", type=click.Path(exists=True, dir_okay=False),
              help="White-matter mask (default: estimated as the brighter half of the brain).")
@click.option("--seed", default=0, show_default=True, type=int, help="Seed of the intensity draws.")
@_force
def lesion_fill_command(t1, mask, out, wm_mask, seed, force):
    """Fill the lesions of T1 (MASK > 0) with normal-appearing white-matter intensities."""
    from bagkit.imaging.lesion import fill_lesions_file

    try:
        written = fill_lesions_file(t1, mask, out, wm_mask_path=wm_mask, seed=seed, force=force)
    except BagkitError as error:
        _fail(error)
    click.echo(f"wrote {written}")


def _numbers(values: pd.Series, path, column: str) -> pd.Series:
    """``values`` as floats; a clear error naming the file, column and lines of text that is not a number."""
    numbers = pd.to_numeric(values, errors="coerce")
    bad = numbers.isna() & values.notna()
    if bad.any():
        examples = ", ".join(repr(v) for v in values[bad].astype(str).unique()[:3])
        raise click.ClickException(f"{path}: column {column!r} must hold numbers; line(s) {line_numbers(bad)} "
                                   f"hold {examples}. Fix those cells or leave them empty.")
    return numbers


@click.command("compare")
@click.argument("a_csv", type=click.Path(exists=True, dir_okay=False))
@click.argument("b_csv", type=click.Path(exists=True, dir_okay=False))
@click.option("--column", default="brain_age", show_default=True, help="Column compared in both tables.")
@click.option("--labels", metavar="A,B", help="Names of the two measurements (default: the file names).")
@click.option("--plot", type=click.Path(dir_okay=False), help="Write the Bland–Altman plot (PNG) here.")
@click.option("--out", type=click.Path(dir_okay=False), help="Write the tidy results CSV here.")
@_force
def compare_command(a_csv, b_csv, column, labels, plot, out, force):
    """Agreement of two predictions (e.g. raw vs lesion-filled): R², r, Bland–Altman."""
    from bagkit.errors import AnalysisError
    from bagkit.plots.agreement import plot_bland_altman
    from bagkit.stats.agreement import bland_altman

    if out and plot and Path(out).resolve() == Path(plot).resolve():
        raise click.BadParameter("--out and --plot name the same file", param_hint="--plot")
    out = _output(out, [a_csv, b_csv], force, "results table") if out else None
    plot = _output(plot, [a_csv, b_csv], force, "plot") if plot else None
    a, b = _read_table(a_csv, "predictions", numeric=(column,)), _read_table(b_csv, "predictions", numeric=(column,))
    for path, frame in ((a_csv, a), (b_csv, b)):
        if column not in frame.columns:
            raise click.ClickException(f"{path}: no column {column!r} (columns: {', '.join(map(str, frame.columns))}).")
        frame[column] = _numbers(frame[column], path, column)
    names = tuple(labels.split(",", 1)) if labels else (Path(a_csv).stem, Path(b_csv).stem)
    if len(names) != 2:
        raise click.BadParameter("give two labels, e.g. raw,filled", param_hint="--labels")
    if "subject_id" in a.columns and "subject_id" in b.columns:
        joined = a[["subject_id", column]].merge(b[["subject_id", column]], on="subject_id", suffixes=("_a", "_b"))
        values_a, values_b = joined[f"{column}_a"], joined[f"{column}_b"]
    elif len(a) == len(b):
        values_a, values_b = a[column], b[column]
    else:
        raise click.ClickException("the tables have no subject_id to pair on and different numbers of rows.")
    try:
        result = bland_altman(values_a, values_b, labels=names)
    except AnalysisError as error:
        _fail(error)
    click.echo(result.describe())
    if out:
        with atomic_output(out) as tmp:
            spreadsheet_safe_frame(result.tidy()).to_csv(tmp, index=False)
        click.echo(f"wrote {out}")
    if plot:
        ax = plot_bland_altman(result)
        with atomic_output(plot) as tmp:
            ax.figure.savefig(tmp, dpi=150)
        click.echo(f"wrote {plot}")


COMMANDS = [predictors_command, predict_command, train_command, lesion_fill_command, compare_command]

__all__ = ["COMMANDS", "predictors_command", "predict_command", "train_command", "lesion_fill_command",
           "compare_command"]
