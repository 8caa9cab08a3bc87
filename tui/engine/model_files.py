"""What a model on disk is, read from its files without loading it (no torch): the architecture,
the parameters and the dtype its weights are stored in (safetensors headers, or a GGUF's tensor
table), whether it has a chat template, vision or text, and the adapters beside it.

A safetensors file starts with an 8-byte little-endian length and a JSON header naming each
tensor's dtype and shape; a GGUF file starts with its metadata and a table of its tensors. Only
those are read, never the weights.
"""

from __future__ import annotations

import json
import logging
import mmap
import struct
from collections import Counter
from dataclasses import dataclass, field
from math import prod
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

SAFETENSORS_DTYPES = {
    "F64": ("float64", 8),
    "F32": ("float32", 4),
    "F16": ("float16", 2),
    "BF16": ("bfloat16", 2),
    "F8_E4M3": ("float8_e4m3fn", 1),
    "F8_E5M2": ("float8_e5m2", 1),
    "I64": ("int64", 8),
    "I32": ("int32", 4),
    "I16": ("int16", 2),
    "I8": ("int8", 1),
    "U8": ("uint8", 1),
    "BOOL": ("bool", 1),
}
MAX_HEADER = 100 * 2**20  # a safetensors header larger than this is not one


class ModelFileError(Exception):
    """The files cannot be read as a model; one line for the user."""


@dataclass
class ModelFacts:
    """What the files say about a model."""

    architecture: str = ""  # e.g. LlamaForCausalLM, or a GGUF's "llama"
    model_type: str = ""
    parameters: int = 0
    dtype: str = ""  # as stored: bfloat16, float32, or a GGUF quantization such as Q4_1
    weight_bytes: int = 0  # bytes of the weights as stored
    size_bytes: int = 0  # bytes of every file of the model
    chat_template: bool = False
    vision: bool = False
    tied_embeddings: bool = True
    embedding_parameters: int = 0  # vocab × hidden: read one row per token when not tied
    context_size: int = 0
    adapters: list[str] = field(default_factory=list)
    quantized: str = ""  # the checkpoint's own quantization_config method, if any
    problem: str = ""  # why some facts are missing

    @property
    def modality(self) -> str:
        return "vision" if self.vision else "text"


def folder_size(folder: Path) -> int:
    total = 0
    for path in folder.rglob("*"):
        try:
            if path.is_file():
                total += path.stat().st_size
        except OSError:
            continue
    return total


def _read_json(path: Path) -> dict[str, Any]:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def safetensors_header(path: Path) -> dict[str, Any]:
    with path.open("rb") as file:
        raw = file.read(8)
        if len(raw) != 8:
            raise ModelFileError(f"{path.name} is too short to be safetensors")
        (length,) = struct.unpack("<Q", raw)
        if length > MAX_HEADER:
            raise ModelFileError(f"{path.name} is not a safetensors file")
        header = json.loads(file.read(length))
    if not isinstance(header, dict):
        raise ModelFileError(f"{path.name} has no safetensors header")
    return header


def weight_files(folder: Path) -> list[Path]:
    index = folder / "model.safetensors.index.json"
    if index.is_file():
        names = sorted(set(_read_json(index).get("weight_map", {}).values()))
        return [folder / name for name in names]
    return sorted(folder.glob("*.safetensors"))


def _count_safetensors(facts: ModelFacts, files: list[Path]) -> None:
    by_dtype: Counter[str] = Counter()
    for file in files:
        try:
            header = safetensors_header(file)
        except (OSError, ValueError, ModelFileError) as exc:
            facts.problem = f"cannot read {file.name}: {exc}"
            continue
        for name, tensor in header.items():
            if name == "__metadata__" or not isinstance(tensor, dict):
                continue
            count = prod(tensor.get("shape", []))
            dtype, size = SAFETENSORS_DTYPES.get(str(tensor.get("dtype")), (str(tensor.get("dtype")).lower(), 1))
            facts.parameters += count
            facts.weight_bytes += count * size
            by_dtype[dtype] += count * size
    if by_dtype:
        facts.dtype = by_dtype.most_common(1)[0][0]


def _has_chat_template(folder: Path) -> bool:
    if (folder / "chat_template.jinja").is_file() or (folder / "chat_template.json").is_file():
        return True
    if any((folder / "additional_chat_templates").glob("*.jinja")):
        return True
    return bool(_read_json(folder / "tokenizer_config.json").get("chat_template"))


def find_adapters(folder: Path) -> list[str]:
    """PEFT adapters in the folder or one level below (adapter_config.json), by folder name."""
    found = []
    for config in [folder / "adapter_config.json", *folder.glob("*/adapter_config.json")]:
        if config.is_file():
            found.append("." if config.parent == folder else config.parent.name)
    return found


def _text_config(config: dict[str, Any]) -> dict[str, Any]:
    inner = config.get("text_config")
    return inner if isinstance(inner, dict) else config


def inspect_folder(folder: Path, size_bytes: int | None = None) -> ModelFacts:
    """The facts of a transformers model folder (config.json and safetensors weights)."""
    facts = ModelFacts(size_bytes=folder_size(folder) if size_bytes is None else size_bytes)
    config = _read_json(folder / "config.json")
    if not config:
        facts.problem = "no readable config.json"
        facts.adapters = find_adapters(folder)
        return facts
    architectures = config.get("architectures") or []
    facts.architecture = str(architectures[0]) if architectures else ""
    facts.model_type = str(config.get("model_type", ""))
    facts.vision = "vision_config" in config or any("ImageTextToText" in str(a) for a in architectures)
    text = _text_config(config)
    facts.tied_embeddings = bool(text.get("tie_word_embeddings", config.get("tie_word_embeddings", True)))
    vocab, hidden = text.get("vocab_size"), text.get("hidden_size")
    if isinstance(vocab, int) and isinstance(hidden, int):
        facts.embedding_parameters = vocab * hidden
    for key in ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length"):
        if isinstance(text.get(key), int):
            facts.context_size = text[key]
            break
    quantization = config.get("quantization_config")
    if isinstance(quantization, dict):
        facts.quantized = str(quantization.get("quant_method", "quantized"))
    facts.chat_template = _has_chat_template(folder)
    facts.adapters = find_adapters(folder)
    _count_safetensors(facts, weight_files(folder))
    if not facts.parameters and not facts.problem:
        facts.problem = "no safetensors weights"
        declared = config.get("dtype") or config.get("torch_dtype")
        facts.dtype = str(declared or "")
    return facts


# -- GGUF ------------------------------------------------------------------------------------

_GGUF_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}
_GGUF_STRING, _GGUF_ARRAY = 8, 9
_GGUF_KEEP = ("general.architecture", "general.name", "tokenizer.chat_template", "context_length", "vocab_size")


class _Reader:
    def __init__(self, data: mmap.mmap) -> None:
        self.data, self.at = data, 0

    def scalar(self, fmt: str) -> Any:
        (value,) = struct.unpack_from(fmt, self.data, self.at)
        self.at += struct.calcsize(fmt)
        return value

    def string(self) -> str:
        length = self.scalar("<Q")
        if length > len(self.data) - self.at:
            raise ModelFileError("a GGUF string runs past the end of the file")
        value = bytes(self.data[self.at : self.at + length]).decode("utf-8", errors="replace")
        self.at += length
        return value

    def value(self, kind: int, keep: bool) -> Any:
        if kind == _GGUF_STRING:
            return self.string()
        if kind == _GGUF_ARRAY:
            inner, count = self.scalar("<I"), self.scalar("<Q")
            if inner in _GGUF_SCALARS:  # skipped whole: arrays of numbers
                self.at += count * struct.calcsize(_GGUF_SCALARS[inner])
                return count
            for _ in range(count):
                self.value(inner, False)
            return count
        if kind not in _GGUF_SCALARS:
            raise ModelFileError(f"unknown GGUF value type {kind}")
        return self.scalar(_GGUF_SCALARS[kind])


def gguf_metadata(path: Path) -> tuple[dict[str, Any], list[tuple[str, int, int]]]:
    """The GGUF's metadata (scalars and strings; arrays as their length) and its tensors as
    (name, elements, ggml type)."""
    with path.open("rb") as file, mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ) as data:
        if data[:4] != b"GGUF":
            raise ModelFileError(f"{path.name} is not a GGUF file")
        reader = _Reader(data)
        reader.at = 4
        version = reader.scalar("<I")
        if version < 2:
            raise ModelFileError(f"{path.name}: GGUF version {version} is too old")
        tensors, pairs = reader.scalar("<Q"), reader.scalar("<Q")
        metadata: dict[str, Any] = {}
        for _ in range(pairs):
            key = reader.string()
            metadata[key] = reader.value(reader.scalar("<I"), True)
        table = []
        for _ in range(tensors):
            name = reader.string()
            dims = [reader.scalar("<Q") for _ in range(reader.scalar("<I"))]
            kind = reader.scalar("<I")
            reader.scalar("<Q")  # offset
            table.append((name, prod(dims), kind))
    return metadata, table


def inspect_gguf(path: Path) -> ModelFacts:
    from gguf.constants import GGML_QUANT_SIZES, GGMLQuantizationType

    facts = ModelFacts(size_bytes=path.stat().st_size)
    try:
        metadata, tensors = gguf_metadata(path)
    except (OSError, ValueError, struct.error, ModelFileError) as exc:
        facts.problem = f"cannot read {path.name}: {exc}"
        return facts
    arch = str(metadata.get("general.architecture", ""))
    facts.architecture = facts.model_type = arch
    facts.chat_template = bool(metadata.get("tokenizer.chat_template"))
    facts.context_size = int(metadata.get(f"{arch}.context_length", 0) or 0)
    by_type: Counter[str] = Counter()
    names = set()
    for name, count, kind in tensors:
        names.add(name)
        facts.parameters += count
        try:
            quant = GGMLQuantizationType(kind)
            block, size = GGML_QUANT_SIZES[quant]
            stored, label = count * size // block, quant.name
        except (ValueError, KeyError):
            stored, label = count, f"type{kind}"
        facts.weight_bytes += stored
        by_type[label] += stored
    facts.dtype = by_type.most_common(1)[0][0] if by_type else ""
    facts.tied_embeddings = "output.weight" not in names
    vocab = metadata.get(f"{arch}.vocab_size") or metadata.get("tokenizer.ggml.tokens")
    hidden = metadata.get(f"{arch}.embedding_length")
    if isinstance(vocab, int) and isinstance(hidden, int):
        facts.embedding_parameters = vocab * hidden
    facts.adapters = [p.name for p in path.parent.glob("*.gguf") if "lora" in p.name.lower() and p != path]
    return facts


def inspect_model(location: Path, size_bytes: int | None = None) -> ModelFacts:
    """A folder or a .gguf file; unreadable files give facts with `problem` set, never raise."""
    try:
        if location.suffix.lower() == ".gguf":
            return inspect_gguf(location)
        return inspect_folder(location, size_bytes)
    except OSError as exc:
        return ModelFacts(problem=f"cannot read {location}: {exc.strerror or exc}")
