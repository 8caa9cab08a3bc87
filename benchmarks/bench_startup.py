"""Time to first frame and to model ready, in a real terminal (tmux), cold and warm.

cold: an empty cache dir, so the bundled GGUF is converted first; warm: the converted copy is
cached. The screen is polled every 20 ms: the first frame is the first capture that shows the
status bar, ready is the first that shows "● ready". Figures only; needs tmux.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHATUI = str(Path(sys.executable).with_name("chatui"))


def launch(env: dict[str, str], timeout: float = 180.0) -> tuple[float, float]:
    session = f"chatui-bench-{os.getpid()}"
    subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)
    env_args = [f"{k}={v}" for k, v in env.items()]
    started = time.perf_counter()
    subprocess.run(
        ["tmux", "new-session", "-d", "-s", session, "-x", "120", "-y", "40", "env", *env_args, CHATUI], check=True
    )
    first = ready = None
    try:
        while time.perf_counter() - started < timeout:
            screen = subprocess.run(
                ["tmux", "capture-pane", "-p", "-t", session], capture_output=True, text=True
            ).stdout
            now = time.perf_counter() - started
            if first is None and ("loading" in screen or "ready" in screen):
                first = now
            if "● ready" in screen:
                ready = now
                break
            time.sleep(0.02)
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)
    if first is None or ready is None:
        raise SystemExit("the app did not become ready in time")
    return first, ready


def main() -> None:
    if shutil.which("tmux") is None:
        print("startup skipped: tmux is not installed")
        return
    with tempfile.TemporaryDirectory() as tmp:
        # PYTHONDONTWRITEBYTECODE="" as on a user machine: bytecode is cached after the first run
        env = {
            "PYTHONDONTWRITEBYTECODE": "",
            "HF_HUB_OFFLINE": "1",
            "XDG_DATA_HOME": f"{tmp}/data",
            "XDG_CONFIG_HOME": f"{tmp}/config",
            "XDG_CACHE_HOME": f"{tmp}/cache",
        }
        cold_first, cold_ready = launch(env)
        warm = [launch(env) for _ in range(2)]
    warm_first = min(w[0] for w in warm)
    warm_ready = min(w[1] for w in warm)
    print(f"startup cold first_frame_s={cold_first:.2f} model_ready_s={cold_ready:.1f} (GGUF conversion)", flush=True)
    print(
        f"startup warm first_frame_s={warm_first:.2f} (goal <= 0.5) model_ready_s={warm_ready:.2f} (goal <= 3)",
        flush=True,
    )


if __name__ == "__main__":
    main()
