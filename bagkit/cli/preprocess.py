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
    from bagkit.imaging.bids import is_bids_folder, read_bids

    if len(arguments) == 1 and Path(arguments[0]).is_dir():
        folder = Path(arguments[0])
        if not is_bids_folder(folder):
            raise click.ClickException(f"{folder}: a folder but not a BIDS dataset (no sub-*/anat/*_T1w.nii[.gz]).")
        frame = read_bids(folder).data
        return [Path(p) for p in frame["scan"].dropna()]
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
@click.option("-q", "--quiet", is_flag=True, help="No progress messages.")
def preprocess_command(inputs, out, order, no_n4, force, quiet):
    """Preprocess raw T1 scans: N4, skull stripping (deepbet), affine registration to the MNI152
    2009a template (SimpleITK), 1 mm, intensity / brain mean, QC.

    INPUTS: NIfTI files, or one cohort table (CSV/TSV) with a `scan` column, or one BIDS folder.
    Cached by input content: a second run on the same scans does nothing."""
    from bagkit.imaging.pipeline import PreprocessOptions, preprocess_scans

    say = _progress(quiet)
    scans = scans_from_arguments(inputs)
    if not scans:
        raise click.ClickException("no scans to preprocess.")
    try:
        options = PreprocessOptions(order=order, n4=not no_n4)
        results = preprocess_scans(scans, out, options, force=force, progress=say)
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

__all__ = ["COMMANDS", "preprocess_command", "scans_from_arguments"]
