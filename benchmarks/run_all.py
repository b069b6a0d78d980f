"""Run every benchmark in this folder in turn (each prints its own figures)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

here = Path(__file__).resolve().parent
status = 0
for script in sorted(here.glob("bench_*.py")):
    print(f"\n=== {script.name} ===", flush=True)
    status |= subprocess.call([sys.executable, str(script), *sys.argv[1:]])
sys.exit(status)
