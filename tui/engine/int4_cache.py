"""int4 weights kept on disk, as the GGUF conversion is: the next load of the same model with
`--quantization int4` takes the quantized linear weights from the cache instead of quantizing
again (quantizing is most of an int4 load: about 20 s of 25 at the 1.7B shape on 2 cores).

Two kinds of file: chatui's own kernel's packed layers (int4_linear.py, plain uint8 tensors,
mmapped) or torchao's quantized weights (the fallback). The key is the checkpoint's folder (a Hub
snapshot's names its commit), the size and mtime of its files, the dtype, the group size, the
packed format and the torch and torchao versions: anything that could change the packed weights
gives a new file, and the old one for the same model is removed. A file that cannot be read, or
does not fit the model, is deleted and the model is quantized as usual. No torch import at module
level.
"""

from __future__ import annotations

import hashlib
import logging
import re
from pathlib import Path
from typing import Any

from tui.engine.sources import one_line
from tui.paths import cache_dir, write_atomic

log = logging.getLogger(__name__)

FORMAT_VERSION = 2  # 2: chatui's kernel's packed layers, or torchao's weights, by `packed_format`
TORCHAO = "torchao"  # the packed_format of torchao's weights


def checkpoint_dir(model_path: str) -> Path | None:
    """The folder the checkpoint's files are in (a local folder, or the Hub cache's snapshot)."""
    path = Path(model_path)
    if path.is_dir():
        return path
    try:
        from transformers.utils import cached_file

        config = cached_file(model_path, "config.json", local_files_only=True)
    except Exception as exc:  # not a local or cached model: its int4 weights are not cached
        log.info("int4 cache: no local config.json for %s (%s)", model_path, one_line(exc))
        return None
    return Path(config).parent if config else None


def cache_file(model_path: str, dtype: str, group_size: int, packed_format: str = TORCHAO) -> Path | None:
    """Where the int4 weights of this checkpoint, dtype, group size and format live (None: unknown
    source). `packed_format` is int4_kernel.PACKED_FORMAT for chatui's kernel, else TORCHAO."""
    import importlib.metadata

    import torch

    try:
        torchao_version = importlib.metadata.version("torchao")
    except importlib.metadata.PackageNotFoundError:
        torchao_version = "none"
    folder = checkpoint_dir(model_path)
    if folder is None:
        return None
    digest = hashlib.sha256()
    digest.update(str(folder.resolve()).encode())
    for file in sorted(folder.iterdir()):
        if file.suffix in (".safetensors", ".bin", ".json") and file.is_file():
            stat = file.stat()
            digest.update(f"{file.name}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    versions = f"{torch.__version__}:{torchao_version}:{FORMAT_VERSION}"
    digest.update(f"{dtype}:{group_size}:{packed_format}:{versions}".encode())
    kernel = "torchao" if packed_format == TORCHAO else "chatui"  # one file per kernel: switching keeps both
    return cache_dir() / "int4" / f"{_name(folder)}-{kernel}-{digest.hexdigest()[:16]}.pt"


def _name(folder: Path) -> str:
    parts = folder.resolve().parts
    if len(parts) >= 3 and parts[-2] == "snapshots":  # the Hub cache: models--org--name/snapshots/<commit>
        return parts[-3].removeprefix("models--")
    return folder.name or "model"


def load(model: Any, path: Path, packed_format: str = TORCHAO) -> bool:
    """Put the cached int4 weights into `model`'s linear layers; False (and the file removed) when
    the file is missing, unreadable or does not fit the model, which then stays as it was."""
    import torch

    from tui.engine import int4_linear

    if not path.is_file():
        return False
    try:
        weights = torch.load(path, mmap=True, weights_only=True, map_location="cpu")
    except Exception as exc:
        log.warning("int4 cache: %s is unreadable (%s); removed, the weights are quantized again", path, one_line(exc))
        path.unlink(missing_ok=True)
        return False
    if packed_format != TORCHAO:
        if not isinstance(weights, dict) or not weights or not int4_linear.load_packed_state(model, weights):
            path.unlink(missing_ok=True)
            return False
        return True
    modules = dict(model.named_modules())
    fits = (
        isinstance(weights, dict)
        and weights
        and all(
            isinstance(modules.get(name), torch.nn.Linear) and tuple(modules[name].weight.shape) == tuple(weight.shape)
            for name, weight in weights.items()
        )
    )
    if not fits:
        path.unlink(missing_ok=True)
        return False
    device = next(model.parameters()).device
    for name, weight in weights.items():
        modules[name].weight = torch.nn.Parameter(weight.to(device), requires_grad=False)
    return True


def save(model: Any, names: list[str], path: Path, packed_format: str = TORCHAO) -> None:
    """Write the int4 weights of the layers in `names` (atomically), and remove older files for the
    same model. A failure to write leaves no file and is not an error: the next load quantizes."""
    import torch

    from tui.engine import int4_linear

    if packed_format != TORCHAO:
        weights = int4_linear.packed_state(model, names)
    else:
        modules = dict(model.named_modules())
        weights = {name: modules[name].weight.detach().to("cpu") for name in names}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, lambda file: torch.save(weights, file))
    except OSError as exc:
        log.warning("int4 cache: cannot write %s (%s); the next load quantizes again", path, exc.strerror or exc)
        return
    # the same model and kernel's older files go (another kernel's stays), and those named before
    # the kernel was in the name; not SmolLM2-135M-Instruct's for SmolLM2-135M
    stem, kernel = path.stem.rsplit("-", 2)[:2]
    same_model = re.compile(re.escape(stem) + rf"(-{re.escape(kernel)})?-[0-9a-f]{{16}}\.pt")
    for old in path.parent.glob(f"{stem}-*.pt"):
        if old != path and same_model.fullmatch(old.name):
            old.unlink(missing_ok=True)
