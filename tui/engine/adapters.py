"""LoRA adapters: where one is, what it is, and whether it fits the loaded model, checked before
anything touches the model.

An adapter is a folder with `adapter_config.json` and `adapter_model.safetensors` (what peft's
`save_pretrained` writes), or a Hub id that names one (from the Hugging Face cache when the Hub is
offline, like a model id). `inspect_adapter` reads its config and the shapes of its tensors (not
the tensors) and says in one line why it cannot be applied: not an adapter, a damaged file, a
kind of adapter chatui does not apply, one made for another model (other modules or shapes), or
one that needs `--trust-remote-code`. A base model that differs only by name is a warning.

The records here (`AdapterInfo`, `AppliedAdapter`, `AdapterState`) are plain data the UI and the
library read; the live adapters on a model are `adapter_control.py`'s. No torch import.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from tui.engine.errors import AdapterError
from tui.engine.sources import _REPO_ID, hub_offline, one_line

CONFIG_FILE = "adapter_config.json"
SAFETENSORS_FILE = "adapter_model.safetensors"
PICKLE_FILE = "adapter_model.bin"
SUPPORTED_TYPES = ("LORA",)  # peft types chatui applies, switches and mixes (scaling per adapter)
_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")  # peft keeps adapters in ModuleDicts: no dots
NONE = "none"  # the base model, as the user names it
HASH_CHARS = 16


@dataclass(frozen=True)
class AppliedAdapter:
    """An adapter a reply was made with: recorded with the reply, exported with it."""

    name: str
    path: str  # as the user gave it: a folder or a Hub id
    sha256: str  # of its config and weights (the first HASH_CHARS hex digits)
    weight: float = 1.0
    merged: bool = False  # merged into the weights (`--merge-adapter`)

    def label(self) -> str:
        text = self.name if self.weight == 1.0 else f"{self.name}×{self.weight:g}"
        return f"{text} (merged)" if self.merged else text

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "path": self.path, "sha256": self.sha256, "weight": self.weight} | (
            {"merged": True} if self.merged else {}
        )

    @classmethod
    def from_dict(cls, data: Any) -> AppliedAdapter | None:
        """The record of a stored dict, or None when it is not one."""
        if not isinstance(data, dict) or not all(isinstance(data.get(k), str) for k in ("name", "path", "sha256")):
            return None
        weight = data.get("weight", 1.0)
        if isinstance(weight, bool) or not isinstance(weight, (int, float)):
            return None
        return cls(data["name"], data["path"], data["sha256"], float(weight), data.get("merged") is True)


@dataclass(frozen=True)
class AdapterInfo:
    """A loaded adapter."""

    name: str
    path: str  # as the user gave it
    folder: str  # where its files are (a Hub id's snapshot in the cache)
    sha256: str
    peft_type: str
    rank: int
    base_model: str | None  # base_model_name_or_path from its config
    warnings: tuple[str, ...] = ()
    load_seconds: float = 0.0

    def applied(self, weight: float = 1.0, merged: bool = False) -> AppliedAdapter:
        return AppliedAdapter(self.name, self.path, self.sha256, weight, merged)


@dataclass(frozen=True)
class AdapterState:
    """The adapters on the loaded model: those loaded, the mix in use (empty: the base model) and
    any merged into the weights."""

    loaded: tuple[AdapterInfo, ...] = ()
    active: tuple[tuple[str, float], ...] = ()
    merged: tuple[AppliedAdapter, ...] = ()

    def get(self, name: str) -> AdapterInfo | None:
        return next((info for info in self.loaded if info.name == name), None)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(info.name for info in self.loaded)

    def applied(self) -> tuple[AppliedAdapter, ...]:
        """The adapters a reply made now is made with (merged ones first)."""
        active = []
        for name, weight in self.active:
            info = self.get(name)
            if info is not None:
                active.append(info.applied(weight))
        return self.merged + tuple(active)

    def label(self) -> str:
        """What the status bar and --stats show: "none", "tuned", "a×0.5+b×0.5", "tuned (merged)"."""
        return describe(self.applied())

    def with_active(self, mix: tuple[tuple[str, float], ...]) -> AdapterState:
        return replace(self, active=mix)


def describe(applied: tuple[AppliedAdapter, ...] | list[AppliedAdapter]) -> str:
    return "+".join(adapter.label() for adapter in applied) or NONE


@dataclass
class AdapterSpec:
    """An adapter read from its folder and checked against a model, not yet applied."""

    folder: Path
    config: dict[str, Any]
    weights_file: Path
    sha256: str
    shapes: dict[str, tuple[int, ...]]  # tensor name → shape
    warnings: list[str] = field(default_factory=list)

    @property
    def peft_type(self) -> str:
        return str(self.config.get("peft_type", "")).upper()

    @property
    def rank(self) -> int:
        rank = self.config.get("r", 0)
        return rank if isinstance(rank, int) else 0

    @property
    def base_model(self) -> str | None:
        base = self.config.get("base_model_name_or_path")
        return base if isinstance(base, str) and base else None


def default_name(path: str) -> str:
    """The name an adapter gets when the user gives none: its folder's (or Hub repo's) name,
    with characters peft cannot take as `_`."""
    stem = Path(path.rstrip("/\\")).name or "adapter"
    name = re.sub(r"[^A-Za-z0-9_-]", "_", stem)[:64]
    return name if name.lower() != NONE else "adapter"


def check_name(name: str, taken: tuple[str, ...]) -> None:
    if not _NAME.match(name):
        raise AdapterError(f"adapter name {name!r}: use letters, digits, - and _ (at most 64)")
    if name.lower() == NONE:
        raise AdapterError("'none' means the base model; give the adapter another name")
    if name in taken:
        raise AdapterError(f"an adapter named {name} is loaded already: unload it first or pick another name")


def resolve_adapter(path: str) -> Path:
    """The folder `path` names: a local folder, or a Hub id's snapshot (downloaded while online;
    from the cache when the Hub is offline)."""
    local = Path(path).expanduser()
    if local.is_dir():
        if not (local / CONFIG_FILE).is_file():
            raise AdapterError(f"{path} is not a PEFT adapter (no {CONFIG_FILE} in it)")
        return local.resolve()
    if local.exists():
        raise AdapterError(f"{path} is not an adapter folder (a folder with {CONFIG_FILE})")
    looks_like_path = path.startswith((".", "/", "~")) or path.count("/") > 1
    if looks_like_path or not _REPO_ID.match(path):
        raise AdapterError(f"adapter not found: {path}")
    from huggingface_hub import snapshot_download

    patterns = [CONFIG_FILE, SAFETENSORS_FILE, PICKLE_FILE, "*.py"]
    try:
        folder = Path(snapshot_download(path, allow_patterns=patterns, local_files_only=hub_offline()))
    except Exception as exc:  # not cached offline, no such repo, no network
        if hub_offline():
            raise AdapterError(
                f"adapter {path!r} is not in the Hugging Face cache and the Hub is offline "
                "(HF_HUB_OFFLINE is set): download it while online, or pass a local folder"
            ) from exc
        raise AdapterError(f"cannot download adapter {path}: {one_line(exc)}") from exc
    if not (folder / CONFIG_FILE).is_file():
        raise AdapterError(f"{path} is not a PEFT adapter (no {CONFIG_FILE} in it)")
    return folder


def content_hash(*files: Path) -> str:
    digest = hashlib.sha256()
    for file in files:
        with file.open("rb") as data:
            for block in iter(lambda: data.read(2**20), b""):
                digest.update(block)
    return digest.hexdigest()[:HASH_CHARS]


def read_adapter(folder: Path, label: str, trust_remote_code: bool, allow_pickle: bool) -> AdapterSpec:
    """The adapter's config, its weights file and its tensors' shapes; AdapterError says why not."""
    try:
        config = json.loads((folder / CONFIG_FILE).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise AdapterError(f"adapter {label}: {CONFIG_FILE} cannot be read ({one_line(exc)})") from exc
    if not isinstance(config, dict):
        raise AdapterError(f"adapter {label}: {CONFIG_FILE} is not a JSON object")
    peft_type = str(config.get("peft_type", "")).upper() or "unknown"
    if peft_type not in SUPPORTED_TYPES:
        article = "an" if peft_type[:1] in "AEIOU" else "a"
        raise AdapterError(
            f"adapter {label} is {article} {peft_type} adapter; chatui applies LoRA adapters "
            "(merge it into the model with peft and load that instead)"
        )
    if needs_remote_code(folder, config) and not trust_remote_code:
        raise AdapterError(
            f"adapter {label} comes with custom code (for a model with custom code); use it only if you "
            "trust it, with --trust-remote-code"
        )
    weights = folder / SAFETENSORS_FILE
    if not weights.is_file():
        if (folder / PICKLE_FILE).is_file():
            if not allow_pickle:
                raise AdapterError(
                    f"adapter {label} has only pickle (.bin) weights; pickle can run code, so pass "
                    "--allow-pickle only if you trust the source"
                )
            weights = folder / PICKLE_FILE
        else:
            raise AdapterError(f"adapter {label} has no weights ({SAFETENSORS_FILE} is missing)")
    if config.get("use_dora"):
        raise AdapterError(
            f"adapter {label} is a DoRA adapter (use_dora): chatui switches plain LoRA adapters; merge "
            "it into the model with peft (merge_and_unload) and load that instead"
        )
    shapes = tensor_shapes(weights, label) if weights.suffix == ".safetensors" else {}
    whole = sorted({module_of(key)[0] for key in shapes if not module_of(key)[1].startswith("lora_")})
    if whole or config.get("modules_to_save"):
        layers = ", ".join(whole or map(str, config["modules_to_save"]))
        raise AdapterError(
            f"adapter {label} also replaces whole layers ({layers}): chatui switches adapters on and off "
            "live and could not put those back; merge it into the model with peft (merge_and_unload) "
            "and load that instead"
        )
    return AdapterSpec(folder, config, weights, content_hash(folder / CONFIG_FILE, weights), shapes)


def needs_remote_code(folder: Path, config: dict[str, Any]) -> bool:
    """An adapter saved on a model with custom code names that code's module (peft's
    `auto_mapping`); one may also ship Python files."""
    mapping = config.get("auto_mapping")
    library = mapping.get("parent_library", "") if isinstance(mapping, dict) else ""
    custom = bool(library) and not str(library).startswith("transformers.")
    return custom or any(folder.glob("*.py"))


def tensor_shapes(weights: Path, label: str) -> dict[str, tuple[int, ...]]:
    """Every tensor's shape, from the safetensors header and checked against the file's size (a
    truncated or damaged file is refused here, before the model is touched)."""
    size = weights.stat().st_size
    try:
        with weights.open("rb") as data:
            header_size = int.from_bytes(data.read(8), "little")
            if header_size <= 0 or 8 + header_size > size or header_size > 100 * 2**20:
                raise ValueError("the header does not fit the file")
            header = json.loads(data.read(header_size))
        shapes: dict[str, tuple[int, ...]] = {}
        end = 0
        for name, entry in header.items():
            if name == "__metadata__":
                continue
            shapes[name] = tuple(int(n) for n in entry["shape"])
            end = max(end, int(entry["data_offsets"][1]))
        if 8 + header_size + end != size:
            raise ValueError(f"the file is {size} bytes, its header describes {8 + header_size + end}")
    except (OSError, ValueError, KeyError, TypeError, IndexError) as exc:
        raise AdapterError(f"adapter {label}: {weights.name} is damaged ({one_line(exc)})") from exc
    if not shapes:
        raise AdapterError(f"adapter {label}: {weights.name} holds no tensors")
    return shapes


def module_of(key: str) -> tuple[str, str]:
    """A saved LoRA tensor's module path in the model and its kind: `base_model.model.X.lora_A.weight`
    → (X, "lora_A")."""
    path = key.removeprefix("base_model.model.")
    parts = path.split(".")
    for i, part in enumerate(parts):
        if part.startswith("lora_") or part in ("modules_to_save", "base_layer", "original_module"):
            return ".".join(parts[:i]), part  # a wrapped layer's own weights: the layer, and what they are
    return ".".join(parts[:-1]), parts[-1]


def check_fits(spec: AdapterSpec, model: Any, label: str, model_name: str) -> None:
    """Refuse an adapter made for another model: a module it adapts that the model lacks, or
    other shapes; a base model that differs only by name adds a warning."""
    for key, shape in spec.shapes.items():
        path, kind = module_of(key)
        try:
            module = model.get_submodule(path)
        except AttributeError:
            raise AdapterError(
                f"adapter {label} was made for another model: it adapts {path}, which {model_name} does not have"
            ) from None
        base = module.get_base_layer() if hasattr(module, "get_base_layer") else module
        sizes = _in_out(base)
        if sizes is None or len(shape) != 2:
            continue
        in_features, out_features = sizes
        expected = {"lora_A": (None, in_features), "lora_B": (out_features, None)}.get(kind)
        if expected is None:
            continue
        for want, have in zip(expected, shape, strict=True):
            if want is not None and want != have:
                raise AdapterError(
                    f"adapter {label} was made for a model with other sizes: {path} is "
                    f"{in_features}→{out_features} in {model_name}, the adapter's {kind} is "
                    f"{'×'.join(map(str, shape))} (base model {spec.base_model or 'unknown'})"
                )
    _check_base_name(spec, model, label, model_name)


def _in_out(module: Any) -> tuple[int, int] | None:
    in_features = getattr(module, "in_features", None)
    out_features = getattr(module, "out_features", None)
    if isinstance(in_features, int) and isinstance(out_features, int):
        return in_features, out_features
    return None


def _check_base_name(spec: AdapterSpec, model: Any, label: str, model_name: str) -> None:
    """Compare the adapter's base model with the loaded one: by its config where chatui can read
    it without the network (another architecture or hidden size is refused), else by name."""
    base = spec.base_model
    if base is None:
        return
    base_config = _local_config(base)
    config = model.config
    if base_config is not None:
        theirs = (base_config.get("model_type"), base_config.get("hidden_size"))
        ours = (getattr(config, "model_type", None), getattr(config, "hidden_size", None))
        if None not in theirs and None not in ours and theirs != ours:
            raise AdapterError(
                f"adapter {label} was made for {base} ({theirs[0]}, hidden size {theirs[1]}); "
                f"{model_name} is {ours[0]} with hidden size {ours[1]}"
            )
    if _simple(base) not in {_simple(model_name), _simple(getattr(config, "_name_or_path", "") or "")}:
        spec.warnings.append(f"adapter {label} was trained on {base}, not {model_name}; its shapes fit, so it is used")


def _simple(name: str) -> str:
    """A model's name for comparison: the last part of a path or repo id, lowercase, without a
    `.gguf` quantization suffix (the bundled model's GGUF is SmolLM2-135M-Instruct.Q4_1)."""
    stem = Path(name.rstrip("/\\")).name.lower()
    stem = re.sub(r"-\d{2,}-[0-9a-f]{16}$", "", stem)  # a converted GGUF's cache folder name
    return re.sub(r"\.(q\d\w*|f16|f32|bf16)$", "", stem.removesuffix(".gguf"))


def _local_config(base: str) -> dict[str, Any] | None:
    """The base model's config.json from a local folder or the Hugging Face cache, or None."""
    path = Path(base).expanduser()
    candidate: str | None = str(path / "config.json") if path.is_dir() else None
    if candidate is None and _REPO_ID.match(base) and not os.path.isabs(base):
        try:
            from huggingface_hub import try_to_load_from_cache

            found = try_to_load_from_cache(base, "config.json")
            candidate = found if isinstance(found, str) else None
        except Exception:  # a malformed id: compare by name
            candidate = None
    if candidate is None or not Path(candidate).is_file():
        return None
    try:
        data = json.loads(Path(candidate).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None
