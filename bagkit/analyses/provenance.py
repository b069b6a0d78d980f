"""What a run was made from, captured when the analysis runs (not when a report is written):
the input files' SHA-256, the software and R versions, the date."""
from __future__ import annotations

import datetime as _dt
import platform
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Mapping

from bagkit import rbridge
from bagkit.io.hashing import file_hash
from bagkit.predictors import ENTRY_POINT_GROUP

__all__ = ["Provenance", "InputFile", "capture_provenance"]

# Python packages whose versions can change a number in the report.
PYTHON_PACKAGES = ("numpy", "pandas", "scipy", "matplotlib", "reportlab", "pypdfium2", "rpy2")
R_PACKAGES = ("MatchIt", "survival", "sandwich", "lmtest")


@dataclass(frozen=True)
class InputFile:
    role: str
    name: str
    sha256: str  # "" when the file was not there to hash


@dataclass(frozen=True)
class Provenance:
    """Inputs, software and time of one analysis run."""

    inputs: tuple[InputFile, ...]
    software: tuple[tuple[str, str], ...]
    r_used: bool
    started: str  # ISO 8601, seconds, local time with offset
    extra: tuple[tuple[str, str], ...] = ()  # e.g. how brain age was predicted

    @property
    def date(self) -> str:
        return self.started[:10]


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def _predictor_distributions() -> list[str]:
    names = []
    for entry in metadata.entry_points(group=ENTRY_POINT_GROUP):
        dist = getattr(entry, "dist", None)
        if dist is not None and dist.name not in names:
            names.append(dist.name)
    return sorted(names)


def hash_inputs(files: Mapping[str, str]) -> tuple[InputFile, ...]:
    out = []
    for role, path in files.items():
        p = Path(path)
        out.append(InputFile(role, p.name, file_hash(p) if p.is_file() else ""))
    return tuple(out)


def capture_provenance(inputs: Mapping[str, str], started: _dt.datetime, r_used: bool,
                       extra: Mapping[str, str] | None = None,
                       r_software: Mapping[str, str] | None = None) -> Provenance:
    """Hash the inputs and read the versions of what computed (R's when this run called R;
    ``r_software``: R's versions read already, by the process that ran R)."""
    import bagkit

    software = [("bagkit", bagkit.__version__), ("Python", platform.python_version())]
    software += [(name, _version(name)) for name in PYTHON_PACKAGES]
    if r_used and r_software:
        software += list(r_software.items())
    elif r_used:
        try:
            software += list(rbridge.r_versions(*R_PACKAGES).items())
        except Exception as error:  # noqa: BLE001 - provenance must still be recorded
            software.append(("R", f"unknown ({error})"))
    else:
        software.append(("R", "not used in this run"))
    software += [(dist, _version(dist)) for dist in _predictor_distributions()]
    return Provenance(hash_inputs(inputs), tuple(software), r_used, started.isoformat(timespec="seconds"),
                      tuple((extra or {}).items()))
