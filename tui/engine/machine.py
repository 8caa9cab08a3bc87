"""This machine as chatui sees it: CPU features, the GPU, memory free, and memory bandwidth.

Decode is bound by memory bandwidth: each new token reads every weight once, so a model that
reads B bytes per token on a machine that moves W bytes per second makes at most W / B tokens per
second. The bandwidth is measured once (a copy of a buffer far larger than the caches, on the
device the model would use, about a second; on the CPU with numpy on every core, no torch) and
kept in the user cache dir, keyed by what would change it (the CPU, the memory, the GPU, the
cores this process may use).
"""

from __future__ import annotations

import json
import logging
import os
import platform
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import psutil

from tui.paths import cache_dir, write_atomic

log = logging.getLogger(__name__)

# x86 /proc/cpuinfo flags (and Arm's "bf16") that decide how fast bf16 and int8 run here.
CPU_FEATURES = {
    "avx2": "AVX2",
    "avx512f": "AVX512",
    "avx512_bf16": "AVX512-BF16",
    "avx512_vnni": "AVX512-VNNI",
    "avx_vnni": "AVX-VNNI",
    "amx_bf16": "AMX-BF16",
    "amx_int8": "AMX-INT8",
    "bf16": "BF16",  # Arm Linux
    "asimddp": "NEON-DOT",
}
MEASURE_BYTES = 256 * 2**20  # far larger than any last-level cache
MEASURE_SECONDS = 1.0


@dataclass(frozen=True)
class Bandwidth:
    bytes_per_s: float
    device: str  # "cpu" or "cuda"
    measured_at: float  # time.time() of the measurement

    @property
    def gb_s(self) -> float:
        return self.bytes_per_s / 1e9


@dataclass
class Machine:
    cpu: str
    cores: int
    cpu_features: list[str]
    memory_total: int
    memory_available: int
    gpu: str | None = None  # name of the CUDA device torch sees
    gpu_memory_total: int = 0
    gpu_memory_free: int = 0
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return asdict(self)


def cpu_name() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        try:
            for line in cpuinfo.read_text(errors="replace").splitlines():
                if line.lower().startswith(("model name", "hardware", "cpu model")):
                    return line.split(":", 1)[1].strip()
        except OSError:
            pass
    return platform.processor() or platform.machine() or "unknown CPU"


def cpu_features() -> list[str]:
    """The CPU features that matter to chatui's kernels, by their usual names."""
    cpuinfo = Path("/proc/cpuinfo")
    if not cpuinfo.is_file():
        return []
    try:
        flags = set(cpuinfo.read_text(errors="replace").split())
    except OSError:
        return []
    return [name for flag, name in CPU_FEATURES.items() if flag in flags]


def describe_machine(with_gpu: bool = True) -> Machine:
    """The machine now (memory free changes; read it each time). `with_gpu` imports torch."""
    memory = psutil.virtual_memory()
    machine = Machine(
        cpu=cpu_name(),
        cores=os.cpu_count() or 1,
        cpu_features=cpu_features(),
        memory_total=memory.total,
        memory_available=memory.available,
    )
    if with_gpu:
        try:
            import torch

            if torch.cuda.is_available():
                free, total = torch.cuda.mem_get_info()
                machine.gpu = torch.cuda.get_device_name(0)
                machine.gpu_memory_total, machine.gpu_memory_free = total, free
        except Exception as exc:  # a broken CUDA install: say so, carry on with the CPU
            machine.notes.append(f"GPU not usable: {exc}")
    return machine


def _bandwidth_file() -> Path:
    return cache_dir() / "bandwidth.json"


def measure_threads() -> int:
    """Threads the CPU measurement copies with: one per core this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _machine_key(device: str) -> str:
    parts = [device, cpu_name(), str(psutil.virtual_memory().total), str(measure_threads())]
    if device == "cuda":
        import torch

        parts.append(torch.cuda.get_device_name(0))
    return "|".join(parts)


def measure_cpu_bandwidth(seconds: float = MEASURE_SECONDS, nbytes: int = MEASURE_BYTES) -> float:
    """Bytes per second the CPU's cores move together: each thread copies its own slice of a
    buffer far larger than the caches (numpy releases the GIL in a copy), reading and writing it.
    No torch: it may run beside the engine's thread without touching its model."""
    import numpy

    threads = measure_threads()
    source = numpy.ones(nbytes // 8, dtype=numpy.float64)
    target = numpy.empty_like(source)
    slices = [slice(i * len(source) // threads, (i + 1) * len(source) // threads) for i in range(threads)]
    numpy.copyto(target, source)  # touch every page once before timing

    def copy_all() -> None:
        workers = [threading.Thread(target=numpy.copyto, args=(target[part], source[part])) for part in slices]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()

    copies, started = 0, time.perf_counter()
    while True:
        copy_all()
        copies += 1
        elapsed = time.perf_counter() - started
        if elapsed >= seconds and copies >= 3:
            break
    return 2 * source.nbytes * copies / elapsed


def measure_bandwidth(device: str = "cpu", seconds: float = MEASURE_SECONDS, nbytes: int = MEASURE_BYTES) -> float:
    """Bytes per second that a copy on `device` reads and writes (a GPU's through torch)."""
    if device != "cuda":
        return measure_cpu_bandwidth(seconds, nbytes)
    import torch

    count = nbytes // 4
    source = torch.ones(count, dtype=torch.float32, device=device)
    target = torch.empty_like(source)
    target.copy_(source)
    torch.cuda.synchronize()
    copies, started = 0, time.perf_counter()
    while True:
        target.copy_(source)
        copies += 1
        torch.cuda.synchronize()
        elapsed = time.perf_counter() - started
        if elapsed >= seconds and copies >= 3:
            break
    return 2 * count * 4 * copies / elapsed


def memory_bandwidth(device: str = "cpu", remeasure: bool = False) -> Bandwidth:
    """This machine's bandwidth on `device`: from the cache, or measured now (about a second)
    and cached."""
    key = _machine_key(device)
    path = _bandwidth_file()
    cached: dict = {}
    try:
        cached = json.loads(path.read_text())
    except (OSError, ValueError):
        cached = {}
    entry = cached.get(key) if isinstance(cached, dict) else None
    if not remeasure and isinstance(entry, dict) and entry.get("bytes_per_s", 0) > 0:
        return Bandwidth(float(entry["bytes_per_s"]), device, float(entry.get("measured_at", 0)))
    result = Bandwidth(measure_bandwidth(device), device, time.time())
    _cache_bandwidth(cached if isinstance(cached, dict) else {}, key, result)
    return result


def raise_bandwidth(device: str, bytes_per_s: float) -> Bandwidth | None:
    """A decode just read weights faster than the cached figure allows: that figure was measured
    while something else ran (it is a lower bound), so the speed seen replaces it. Returns the
    new figure, or None when the cached one was higher already (or none is cached)."""
    current = cached_bandwidth(device)
    if current is None or bytes_per_s <= current.bytes_per_s:
        return None
    try:
        cached = json.loads(_bandwidth_file().read_text())
    except (OSError, ValueError):
        cached = {}
    result = Bandwidth(bytes_per_s, device, time.time())
    _cache_bandwidth(cached if isinstance(cached, dict) else {}, _machine_key(device), result)
    return result


def _cache_bandwidth(cached: dict, key: str, bandwidth: Bandwidth) -> None:
    path = _bandwidth_file()
    cached[key] = {"bytes_per_s": bandwidth.bytes_per_s, "measured_at": bandwidth.measured_at}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, lambda file: file.write(json.dumps(cached, indent=1).encode()))
    except OSError as exc:
        log.warning("cannot cache the measured bandwidth in %s: %s", path, exc)


def cached_bandwidth(device: str = "cpu") -> Bandwidth | None:
    """The cached figure for `device`, or None when it was never measured here (nothing is
    measured: for the UI thread)."""
    try:
        cached = json.loads(_bandwidth_file().read_text())
        entry = cached.get(_machine_key(device))
    except (OSError, ValueError, AttributeError):
        return None
    if isinstance(entry, dict) and entry.get("bytes_per_s", 0) > 0:
        return Bandwidth(float(entry["bytes_per_s"]), device, float(entry.get("measured_at", 0)))
    return None
