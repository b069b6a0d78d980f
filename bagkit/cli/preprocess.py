"""``bagkit preprocess``: raw T1 scans (or a cohort table's ``scan`` column) → MNI-registered,
skull-stripped, normalised scans with QC. Parses, calls :mod:`bagkit.imaging.pipeline`, says
where the files went. Nothing heavy is imported until the command runs."""
from __future__ import annotations

import time
from pathlib import Path

import click

from bagkit.errors import BagkitError

TABLE_SUFFIXES = (".csv", ".tsv", ".tab")


def _progress(quiet: bool):
    start = time.perf_counter()

    def say(message: str) -> None:
        if not quiet:
            click.echo(f"[{time.perf_counter() - start:6.1f}s] {message}", err=True)

    return say


def scans_from_arguments(arguments) -> list[Path]:
    """The scan paths: each argument a NIfTI file, or one cohort table whose ``scan`` column
    names them (relative to the table), or one BIDS folder."""
    from bagkit.cohort.bids import is_bids_folder, read_bids

    if len(arguments) == 1 and Path(arguments[0]).is_dir():
        folder = Path(arguments[0])
        if not is_bids_folder(folder):
            raise click.ClickException(f"{folder}: a folder but not a BIDS dataset (no sub-*/anat/*_T1w.nii[.gz]).")
        table = read_bids(folder)
        for note in table.notes:
            click.echo(f"BIDS: {note}", err=True)
        return [Path(p) for p in table.data["scan"].dropna()]
    if len(arguments) == 1 and Path(arguments[0]).suffix.lower() in TABLE_SUFFIXES:
        from bagkit.io.tables import read_table

        table = Path(arguments[0])
        try:
            frame = read_table(table, "cohort table")
        except BagkitError as error:
            raise click.ClickException(str(error)) from None
        if "scan" not in frame.columns:
            raise click.ClickException(f"{table}: no 'scan' column; it should name each subject's T1 NIfTI "
                                       f"(relative to the table's folder).")
        scans = []
        for line, value in zip(range(2, len(frame) + 2), frame["scan"]):
            if not isinstance(value, str) or not value.strip():
                click.echo(f"{table}, line {line}: no scan given; skipped", err=True)
                continue
            path = Path(str(value).strip())
            scans.append(path if path.is_absolute() else table.parent / path)
        return scans
    for argument in arguments:
        if Path(argument).suffix.lower() in TABLE_SUFFIXES:
            raise click.ClickException(f"{argument}: give a cohort table alone (not beside scan files).")
    return [Path(a) for a in arguments]


@click.command("preprocess")
@click.argument("inputs", nargs=-1, required=True, type=click.Path(exists=True))
@click.option("-o", "--out", required=True, type=click.Path(file_okay=False),
              help="Output folder: per scan the preprocessed T1, brain mask, transform, QC picture; qc.csv.")
@click.option("--order", type=click.Choice(["strip-first", "register-first"]), default="strip-first",
              show_default=True,
              help="Strip the native scan then register the brain (default), or register the head then strip "
                   "(the paper's order); see docs/preprocessing.md.")
@click.option("--no-n4", is_flag=True, help="Skip N4 bias-field correction.")
@click.option("--force", is_flag=True,
              help="Replace outputs made from another input or pipeline version (never an input file).")
@click.option("--scheduler", metavar="ADDRESS",
              help="Preprocess on an existing Dask cluster: its scheduler address (tcp://host:8786) or scheduler "
                   "file; one task per scan. The workers WRITE the outputs: the scans and the output folder must "
                   "be on a filesystem shared with them, at the same paths (see docs/distributed.md).")
@click.option("--workers", type=click.IntRange(min=1), metavar="N",
              help="Preprocess on a Dask cluster of N worker processes on this machine (with --scheduler: wait "
                   "for N workers to join). Needs `pip install 'bagkit[distributed]'`.")
@click.option("-q", "--quiet", is_flag=True, help="No progress messages.")
def preprocess_command(inputs, out, order, no_n4, force, scheduler, workers, quiet):
    """Preprocess raw T1 scans: N4, skull stripping (deepbet), affine registration to the MNI152
    2009a template (SimpleITK), 1 mm, intensity / brain mean, QC.

    INPUTS: NIfTI files, or one cohort table (CSV/TSV) with a `scan` column, or one BIDS folder.
    Cached by input content: a second run on the same scans does nothing. With --workers N or
    --scheduler ADDRESS each scan is a Dask task (docs/distributed.md)."""
    from bagkit.imaging.pipeline import PreprocessOptions, preprocess_scans

    say = _progress(quiet)
    try:
        scans = scans_from_arguments(inputs)
    except BagkitError as error:
        raise click.ClickException(str(error)) from None
    if not scans:
        raise click.ClickException("no scans to preprocess.")
    try:
        options = PreprocessOptions(order=order, n4=not no_n4)
        if scheduler is None and workers is None:
            results = preprocess_scans(scans, out, options, force=force, progress=say)
        else:  # Dask is imported only here
            from bagkit.predictors.preprocess_distributed import preprocess_scans_distributed

            results = preprocess_scans_distributed(scans, out, options, force=force, progress=say,
                                                   scheduler=scheduler, workers=workers, bar=not quiet)
    except BagkitError as error:
        raise click.ClickException(str(error)) from None
    failed = [r for r in results if r.error]
    flagged = [r for r in results if not r.error and r.flags]
    for result in failed:
        click.echo(f"failed {result.source}: {result.error}", err=True)
    for result in flagged:
        click.echo(f"QC flags for {result.source}: {', '.join(result.flags)} (see {result.files['qc_png']})",
                   err=True)
    click.echo(f"wrote {Path(out) / 'qc.csv'} ({len(results) - len(failed) - len(flagged)} passed, "
               f"{len(flagged)} flagged, {len(failed)} failed; "
               f"{sum(r.cached for r in results)} from the cache)")
    if len(failed) == len(results):
        raise click.ClickException(f"all {len(results)} scan(s) failed.")


COMMANDS = [preprocess_command]




# ------------------------------------------------------------------ --preprocess on predict / report

_META = "bagkit.preprocess"


def default_preprocess_dir() -> Path:
    import os

    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "bagkit" / "preprocessed"


def _store(name: str):
    def callback(ctx, _param, value):
        ctx.meta.setdefault(_META, {})[name] = value
        return value
    return callback


def preprocess_options(command):
    """``--preprocess``, ``--keep-flagged`` and ``--preprocess-dir`` for a command that predicts
    (``bagkit predict``, ``bagkit report``). The values travel in click's context, so the command's
    own signature does not change; :func:`predict_scans` reads them."""
    options = [
        click.option("--preprocess", is_flag=True, expose_value=False, callback=_store("enabled"),
                     help="The scans are raw T1s: run bagkit's preprocessing (N4, skull stripping, MNI affine "
                          "registration, QC) before predicting; cached by scan content. Scans declared already "
                          "in MNI space and stripped (column scan_preprocessed = 1, or named "
                          "*_space-MNI152*_desc-preproc_T1w.nii.gz) pass through."),
        click.option("--keep-flagged", is_flag=True, expose_value=False, callback=_store("keep_flagged"),
                     help="With --preprocess: predict scans that QC flagged too (left out with a note by default)."),
        click.option("--preprocess-dir", type=click.Path(file_okay=False), expose_value=False,
                     callback=_store("store"),
                     help="With --preprocess: where preprocessed scans are kept (default: "
                          "$XDG_CACHE_HOME/bagkit/preprocessed, i.e. ~/.cache/bagkit/preprocessed)."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def preprocess_requested() -> bool:
    """Whether the running command was given any of the ``--preprocess`` options."""
    context = click.get_current_context(silent=True)
    return context is not None and any(context.meta.get(_META, {}).values())


def check_preprocess_options() -> dict:
    """The command's preprocessing settings; --keep-flagged or --preprocess-dir without
    --preprocess is a usage error (raised before anything is loaded)."""
    context = click.get_current_context(silent=True)
    settings = context.meta.get(_META, {}) if context is not None else {}
    if not settings.get("enabled") and (settings.get("keep_flagged") or settings.get("store")):
        raise click.UsageError("--keep-flagged and --preprocess-dir need --preprocess.")
    return settings


def predict_scans(frame, predictor, base_dir, cache_dir=None, progress: bool = True, scheduler=None, workers=None):
    """``bagkit.predictors.predict_cohort``, or with ``--preprocess``
    :func:`bagkit.predictors.raw.predict_from_raw` (raw scans preprocessed first, QC columns added)."""
    from bagkit.predictors import predict_cohort

    settings = check_preprocess_options()
    if not settings.get("enabled"):
        return predict_cohort(frame, predictor, base_dir=base_dir, cache_dir=cache_dir, progress=progress,
                              scheduler=scheduler, workers=workers)
    from bagkit.predictors.raw import predict_from_raw

    return predict_from_raw(frame, predictor, Path(settings.get("store") or default_preprocess_dir()),
                            base_dir=base_dir, cache_dir=cache_dir, keep_flagged=bool(settings.get("keep_flagged")),
                            progress=progress, say=_progress(not progress), scheduler=scheduler, workers=workers)


__all__ = ["COMMANDS", "preprocess_command", "scans_from_arguments", "preprocess_options", "predict_scans",
           "preprocess_requested", "default_preprocess_dir"]
