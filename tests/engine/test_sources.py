"""Where models come from: the bundled GGUF, converted once into chatui's cache."""

from __future__ import annotations

import gguf

from tui.engine.sources import _gguf_read_once, default_gguf_path


def test_a_conversion_reads_the_gguf_header_once_and_maps_names_once():
    """transformers parses a GGUF three times while converting it (tokenizer, config, weights) and
    builds the tensor-name map per module: within a conversion each is made once (17 s → 9 s)."""
    path = default_gguf_path()
    reader, name_map = gguf.GGUFReader, gguf.get_tensor_name_map
    with _gguf_read_once():
        first = gguf.GGUFReader(path)
        assert gguf.GGUFReader(path) is first and len(first.tensors) == 272
        arch = gguf.MODEL_ARCH.LLAMA
        assert gguf.get_tensor_name_map(arch, 30) is gguf.get_tensor_name_map(arch, 30)
    assert (gguf.GGUFReader, gguf.get_tensor_name_map) == (reader, name_map)  # put back
