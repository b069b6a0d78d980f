#!/usr/bin/env bash
# Set up everything bagkit needs, idempotently, from the project's own files:
# Debian's R with MatchIt/survival/pROC, poppler-utils, a virtual environment in
# .venv with bagkit, its predictors (torch CPU build pinned) and the test tools.
set -euo pipefail
shopt -s nullglob
cd "$(dirname "$0")/.."

# libreoffice-writer and chromium: the tests open report.docx and report.html as a reader's software would
apt_packages=(r-base-core r-base-dev r-cran-matchit r-cran-survival r-cran-proc r-cran-sandwich r-cran-lmtest poppler-utils libreoffice-writer chromium)
missing=()
for package in "${apt_packages[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "bagkit setup: installing Debian packages: ${missing[*]}"
    if [ "$(id -u)" -eq 0 ]; then sudo_cmd=(); elif command -v sudo >/dev/null; then sudo_cmd=(sudo); else
        echo "bagkit setup: need root (or sudo) to install: ${missing[*]}" >&2; exit 1
    fi
    "${sudo_cmd[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq "${missing[@]}" >/dev/null
fi

python=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    echo "bagkit setup: creating .venv"
    "$python" -m venv .venv
fi

# Reinstall only when the project's dependency files changed.
stamp=.venv/.bagkit-setup-stamp
want=$(cat pyproject.toml predictors/*/pyproject.toml scripts/setup.sh | sha256sum | cut -d" " -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    echo "bagkit setup: installing Python packages into .venv"
    .venv/bin/python -m pip install -q --upgrade pip
    # torch first and pinned: the CPU build; an unpinned torch pulls a multi-GB CUDA build.
    .venv/bin/python -m pip install -q "torch==2.13.0"
    predictor_dirs=()
    for d in predictors/*/; do [ -f "$d/pyproject.toml" ] && predictor_dirs+=(-e "$d"); done
    .venv/bin/python -m pip install -q -e ".[test,distributed,preprocess]" "${predictor_dirs[@]}"
    echo "$want" > "$stamp"
fi
# bagkit and its predictors are installed editable (from this folder): compile their modules, as pip
# does for an installed package. Where PYTHONDONTWRITEBYTECODE is set, Python would otherwise compile
# them again on every run (~0.2 s of a report); compileall redoes only files that changed.
.venv/bin/python -m compileall -q bagkit predictors > /dev/null
echo "bagkit setup: ready (.venv/bin/bagkit)"
