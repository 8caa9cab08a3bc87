"""Model files that cannot load, each in its own way, for the load-failure tests."""

from __future__ import annotations

import json
import shutil
from pathlib import Path


def write_unsupported_gguf(path: Path) -> Path:
    import gguf
    import numpy as np

    writer = gguf.GGUFWriter(str(path), "mamba3000")
    writer.add_block_count(1)
    writer.add_context_length(64)
    writer.add_embedding_length(8)
    writer.add_tensor("token_embd.weight", np.zeros((16, 8), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def write_huge_config(folder: Path, tiny_model_dir: Path) -> Path:
    """A llama config of ~10 trillion parameters (tens of TB), and no weights at all."""
    folder.mkdir()
    config = json.loads((tiny_model_dir / "config.json").read_text())
    config.update(
        hidden_size=65536,
        intermediate_size=262144,
        num_hidden_layers=200,
        num_attention_heads=512,
        num_key_value_heads=512,
        vocab_size=32000,
    )
    (folder / "config.json").write_text(json.dumps(config))
    return folder


def write_pickle_only(folder: Path, tiny_model_dir: Path) -> Path:
    """The tiny model with its weights only as pytorch_model.bin (transformers 5 always writes
    safetensors from save_pretrained, so the .bin is written with torch.save)."""

    import torch
    from safetensors.torch import load_file

    folder.mkdir()
    for item in tiny_model_dir.iterdir():
        if item.name != "model.safetensors":
            shutil.copy(item, folder / item.name)
    torch.save(load_file(tiny_model_dir / "model.safetensors"), folder / "pytorch_model.bin")
    return folder
