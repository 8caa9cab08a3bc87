"""chatui's own int4 kernel (kernels/int4_linear.cpp): built on first use, loaded after.

The C++ source is compiled with `torch.utils.cpp_extension` into chatui's cache, in a folder named
for the torch version and the source's hash, so it is built once per machine and torch version
(about 10-30 s on 2 cores) and loaded in a fraction of a second after that. It registers the
`chatui::int4_*` ops with torch.library; a fake (meta) implementation registered here lets
torch.compile trace a model around them.

`CHATUI_INT4_KERNEL=torchao` in the environment chooses torchao's kernel instead (to compare them).
When it cannot be used (not an x86 CPU, no C++ compiler or ninja, a failed build, a CPU without
AVX2) `kernel()` says why in one line and int4 runs on torchao's kernel instead. No torch import
at module level.
"""

from __future__ import annotations

import hashlib
import logging
import os
import platform
import shutil
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tui.engine.sources import one_line
from tui.paths import cache_dir

log = logging.getLogger(__name__)

SOURCE = Path(__file__).resolve().parent / "kernels" / "int4_linear.cpp"
# The packed layout's name: it goes into the int4 cache's key, so a change to the layout gives a new file.
PACKED_FORMAT = "chatui-q4-b32-t16-v1"
# The ISA paths the kernel has, fastest first ("scalar" is a reference for tests, not for use).
FAST_ISAS = ("avx512vnni", "avxvnni", "avx2")
BUILD_SECONDS = 30  # what the progress line promises: measured 11-30 s on 2 cores

TILE_ROWS, BLOCK, BLOCK_BYTES = 16, 32, 320  # as in the C++ source

_lock = threading.Lock()


def packed_bytes(out_features: int, in_features: int) -> int:
    """Bytes a packed out x in layer takes (rows padded to 16, columns to 32)."""
    tiles = -(-out_features // TILE_ROWS)
    blocks = -(-in_features // BLOCK)
    return tiles * blocks * BLOCK_BYTES


@dataclass
class KernelStatus:
    """Whether the kernel is usable here; `reason` says why not, `isas` what this CPU runs."""

    available: bool
    reason: str = ""
    isas: list[str] = field(default_factory=list)
    built: bool = False  # this call compiled it (the first use on this machine and torch version)

    @property
    def isa(self) -> str:
        return self.isas[0] if self.isas else ""


_status: KernelStatus | None = None


def build_dir() -> Path:
    """Where this source, built for this torch, lives."""
    import torch

    digest = hashlib.sha256(SOURCE.read_bytes()).hexdigest()[:12]
    return cache_dir() / "kernels" / f"int4-torch{torch.__version__.replace('+', '-')}-{digest}"


def _compiler() -> str | None:
    name = os.environ.get("CXX", "c++")
    return shutil.which(name)


def _ninja_on_path() -> bool:
    """cpp_extension builds with ninja: the `ninja` package's binary, or one on PATH."""
    try:
        import ninja

        folder = ninja.BIN_DIR
        if folder not in os.environ.get("PATH", "").split(os.pathsep):
            os.environ["PATH"] = folder + os.pathsep + os.environ.get("PATH", "")
    except ImportError:
        pass
    return shutil.which("ninja") is not None


def build_problem() -> str:
    """Why the kernel cannot be built or loaded here, from cheap checks only ("" when it can, or
    when it already was)."""
    if _status is not None:
        return _status.reason
    if os.environ.get("CHATUI_INT4_KERNEL", "").lower() == "torchao":  # asked for: to compare, or to work around
        return "CHATUI_INT4_KERNEL=torchao is set"
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return f"chatui's int4 kernel is for x86 CPUs, not {platform.machine()}"
    try:
        if (build_dir() / "chatui_int4.so").is_file():
            return ""
    except OSError as exc:
        return f"chatui's int4 kernel source is unreadable: {exc.strerror or exc}"
    if _compiler() is None:
        return f"no C++ compiler ({os.environ.get('CXX', 'c++')}) to build chatui's int4 kernel"
    if not _ninja_on_path():
        return "no ninja to build chatui's int4 kernel (pip install ninja)"
    return ""


def kernel(progress: Callable[[str], None] | None = None) -> KernelStatus:
    """Build (first use) or load the kernel once per process; the status says whether it is usable.
    `progress` hears one line before a build starts."""
    global _status
    with _lock:
        if _status is None:
            _status = _load(progress)
            if not _status.available:
                log.info("int4 kernel: %s", _status.reason)
        return _status


def reset_for_tests() -> None:
    """Forget the outcome so the next `kernel()` tries again (an op library once loaded stays)."""
    global _status
    with _lock:
        _status = None


def _load(progress: Callable[[str], None] | None) -> KernelStatus:
    problem = build_problem()
    if problem:
        return KernelStatus(False, problem)
    import torch

    if _already_registered():
        return _ready(built=False)
    folder = build_dir()
    library = folder / "chatui_int4.so"
    built = False
    if not library.is_file():
        if progress is not None:
            progress(f"building chatui's int4 kernel (once for this machine and torch, about {BUILD_SECONDS} s)")
        try:
            _build(folder)
        except Exception as exc:  # a compiler error, a full disk: torchao's kernel is used
            return KernelStatus(False, f"chatui's int4 kernel did not build: {one_line(exc)[:300]}")
        built = True
    try:
        torch.ops.load_library(str(library))
    except Exception as exc:  # a stale or foreign file: removed, the next start builds it again
        library.unlink(missing_ok=True)
        return KernelStatus(False, f"chatui's int4 kernel did not load: {one_line(exc)[:300]}")
    return _ready(built)


def _already_registered() -> bool:
    import torch

    try:
        torch.ops.chatui.int4_isas  # noqa: B018 - raises AttributeError when not loaded
    except (AttributeError, RuntimeError):
        return False
    return True


def _build(folder: Path) -> None:
    from torch.utils import cpp_extension

    folder.mkdir(parents=True, exist_ok=True)
    cpp_extension.load(
        name="chatui_int4",
        sources=[str(SOURCE)],
        extra_cflags=["-O3", "-fopenmp"],  # at::parallel_for's threads are torch's OpenMP pool
        extra_ldflags=["-fopenmp"],
        build_directory=str(folder),
        is_python_module=False,  # the ops register with torch.library; nothing to import
        verbose=False,
    )
    # cpp_extension loaded it already; keep only the library so the folder is small
    for leftover in folder.iterdir():
        if leftover.suffix in (".o", ".ninja_deps", ".ninja_log") or leftover.name == "build.ninja":
            leftover.unlink(missing_ok=True)
    # builds of an older source or another torch are not used again (a process still running one keeps its copy)
    for old in folder.parent.glob("int4-*"):
        if old != folder and old.is_dir():
            shutil.rmtree(old, ignore_errors=True)


def _ready(built: bool) -> KernelStatus:
    import torch

    _register_fake()
    isas = [isa for isa in torch.ops.chatui.int4_isas() if isa in FAST_ISAS]
    if not isas:
        return KernelStatus(False, "this CPU has no AVX2, which chatui's int4 kernel needs", built=built)
    return KernelStatus(True, isas=isas, built=built)


_fake_registered = False


def _register_fake() -> None:
    """Shapes for torch.compile: the op's output is the input with its last size changed."""
    global _fake_registered
    if _fake_registered:
        return
    import torch

    @torch.library.register_fake("chatui::int4_linear")
    def _(x, packed, bias, out_features, in_features):
        return x.new_empty((*x.shape[:-1], out_features))

    _fake_registered = True
