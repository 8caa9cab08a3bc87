"""`chatui --models`, `--doctor` and `--download ID`: the models, this machine, and downloads from
the command line. Each prints and returns an exit code (0 done, 1 it could not be done)."""

from __future__ import annotations

import getpass
import json
import sys
import threading
import time
from typing import Any, TextIO

from tui.core.catalogue import entry_line, load_catalogue
from tui.engine.settings import LoadSettings


def run_models(load: LoadSettings, config_paths: list[str], as_json: bool, out: TextIO = sys.stdout) -> int:
    """Every model chatui can offer, one line each (or a JSON list), the most recently used first."""
    entries, problems = load_catalogue(load, config_paths)
    if as_json:
        json.dump([entry.as_dict() for entry in entries], out, indent=1)
        out.write("\n")
    else:
        now = time.time()
        for entry in entries:
            print(entry_line(entry, now), file=out)
        if not entries:
            print("no models found: chatui --download ID fetches one from the Hub", file=out)
    for problem in problems:
        print(f"chatui: warning: {problem}", file=sys.stderr)
    return 0


def _gib(count: float) -> str:
    return f"{count / 2**30:.1f} GiB"


def run_doctor(load: LoadSettings, out: TextIO = sys.stdout) -> int:
    """This machine as chatui sees it, and what it would pick here and why."""
    import importlib.util

    from tui.engine.downloads import hub_offline
    from tui.engine.estimates import stored_bytes_per_parameter
    from tui.engine.hardware import explain_dtype, pick_device, unavailable_options
    from tui.engine.hub_cache import HubCacheError, cached_models, hub_cache_dir
    from tui.engine.machine import describe_machine, memory_bandwidth

    machine = describe_machine()
    features = " ".join(machine.cpu_features) or "none of AVX2/AVX512/BF16/VNNI/AMX"
    print(f"cpu: {machine.cpu}, {machine.cores} cores; features: {features}", file=out)
    print(f"memory: {_gib(machine.memory_available)} available of {_gib(machine.memory_total)}", file=out)
    if machine.gpu:
        gpu = f"{machine.gpu}, {_gib(machine.gpu_memory_free)} free of {_gib(machine.gpu_memory_total)}"
    else:
        gpu = "none that torch can use"
    print(f"gpu: {gpu}", file=out)
    for note in machine.notes:
        print(f"note: {note}", file=out)
    device = pick_device(load.device) if load.device != "mps" else "mps"
    bandwidth = memory_bandwidth("cuda" if device == "cuda" else "cpu")
    when = time.strftime("%Y-%m-%d %H:%M", time.localtime(bandwidth.measured_at))
    print(f"memory bandwidth: {bandwidth.gb_s:.1f} GB/s on {bandwidth.device} (measured {when}, cached)", file=out)
    dtype, why = explain_dtype(device)
    print(f"device: {device}", file=out)
    print(f"dtype: {dtype} ({why})", file=out)
    unavailable = unavailable_options()
    if load.quantization != "none":
        quantization = f"{load.quantization} (asked for)"
    elif device == "cpu" and "quantization:int4" not in unavailable:
        ratio = stored_bytes_per_parameter("none", dtype) / stored_bytes_per_parameter("int4", dtype)
        quantization = (
            f"none by default; int4 (--quantization int4) reads {ratio:.1f}x fewer bytes per token, "
            f"so its decode limit is {ratio:.1f}x higher here, at a small loss of quality"
        )
    else:
        reason = unavailable.get("quantization:int4", "")
        quantization = f"none (int4: {reason})" if reason else "none"
    print(f"quantization: {quantization}", file=out)
    if device == "cpu":
        print(f"int4 kernel: {_int4_kernel_line()}", file=out)
    for option, reason in sorted(unavailable.items()):
        print(f"unavailable: {option} ({reason})", file=out)
    print(f"flash-attn: {'installed' if importlib.util.find_spec('flash_attn') else 'not installed'}", file=out)
    try:
        count = len(cached_models())
        print(f"hub cache: {hub_cache_dir()} ({count} models){', offline' if hub_offline() else ''}", file=out)
    except HubCacheError as exc:
        print(f"hub cache: {exc}", file=out)
    return 0


def _int4_kernel_line() -> str:
    """Which kernel int4 would run on, from cheap checks (nothing is built or loaded here)."""
    from tui.engine import int4_kernel

    problem = int4_kernel.build_problem()
    if problem:
        return f"torchao's ({problem})"
    if (int4_kernel.build_dir() / "chatui_int4.so").is_file():
        return f"chatui's, built in {int4_kernel.build_dir()}"
    return f"chatui's, built on the first int4 load (about {int4_kernel.BUILD_SECONDS} s, once)"


def _ask_token(err: TextIO) -> str | None:
    if not sys.stdin.isatty():
        return None
    try:
        return getpass.getpass("Hugging Face token (hf_...; stored where huggingface_hub keeps it): ").strip() or None
    except (EOFError, KeyboardInterrupt):
        print(file=err)
        return None


def run_download(repo_id: str, out: TextIO = sys.stdout, err: TextIO = sys.stderr) -> int:
    """Download `repo_id` into the Hugging Face cache with a progress line on stderr; Ctrl+C
    keeps what came, and the same command resumes."""
    from tui.engine.downloads import (
        DownloadCancelled,
        DownloadError,
        DownloadProgress,
        TokenRequired,
        download,
        hub_offline,
        plan_download,
        save_token,
    )
    from tui.engine.hub_cache import cached_models

    if hub_offline():
        print("chatui: the Hub is offline (HF_HUB_OFFLINE is set): nothing can be downloaded", file=err)
        repos = cached_models()
        print("cached models:" if repos else "the Hugging Face cache is empty", file=err)
        for repo in repos:
            print(f"  {repo.repo_id}  {repo.size_bytes / 2**20:.0f} MiB", file=err)
        return 1
    live = err.isatty()
    last: list[Any] = [0.0, ""]  # when the line was drawn, and for which file

    def show(progress: DownloadProgress) -> None:
        """At most five times a second, and whenever the file changes (a small file's line must
        not stay up while the weights download)."""
        now = time.monotonic()
        if live and (now - last[0] >= 0.2 or progress.done == progress.total or progress.file != last[1]):
            last[0], last[1] = now, progress.file
            err.write("\r\x1b[2K" + progress.line()[:200])
            err.flush()

    cancel = threading.Event()
    for _attempt in range(2):  # a second try after a token is given
        try:
            plan = plan_download(repo_id)
            print(f"{repo_id}: {len(plan.files)} files, {plan.total / 2**20:.1f} MiB", file=err)
            folder = download(plan, show, cancel)
        except TokenRequired as exc:
            print(f"chatui: {exc}", file=err)
            token = _ask_token(err)
            if token is None:
                print("chatui: run `hf auth login` or set HF_TOKEN, then download again", file=err)
                return 1
            try:
                save_token(token)
            except DownloadError as refused:
                print(f"chatui: {refused}", file=err)
                return 1
            continue
        except KeyboardInterrupt:
            cancel.set()
            print("\nchatui: download cancelled; what came is kept: run the same command to resume", file=err)
            return 1
        except DownloadCancelled as exc:
            print(f"\nchatui: {exc}", file=err)
            return 1
        except DownloadError as exc:
            print(f"{chr(10) if live else ''}chatui: {exc}", file=err)
            return 1
        if live:
            err.write("\n")
        print(folder, file=out)
        return 0
    return 1
