"""`make bench`: run every benchmark script in turn; each prints its own figures and ratios."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent
SCRIPTS = [
    "bench_engine.py",
    "bench_kernel.py",
    "bench_sizes.py",
    "bench_adapters.py",
    "bench_quality.py",
    "bench_speed.py",
    "bench_chat.py",
    "bench_render.py",
    "bench_startup.py",
    "bench_library.py",
    "bench_vision.py",
]

if __name__ == "__main__":
    failed = 0
    for name in SCRIPTS:
        path = HERE / name
        if not path.exists():
            continue
        print(f"== {name}", flush=True)
        failed |= subprocess.run([sys.executable, str(path)]).returncode != 0
    sys.exit(1 if failed else 0)
