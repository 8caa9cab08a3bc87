"""Linear layers packed for oneDNN at load: the same numbers as torch.nn.Linear, in every shape
generate uses (one token, a prompt, a batch of candidate tokens), and a tied output layer copied
only when the copy is small."""

from __future__ import annotations

import pytest
import torch

from tui.engine import Engine, Finished, GenerationSettings, LoadSettings, packed_linear
from tui.engine.packed_linear import can_pack, pack_linear_layers

pytestmark = pytest.mark.skipif(not can_pack("cpu", "float32"), reason="torch built without oneDNN")


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("bias", [False, True])
def test_a_packed_layer_gives_what_linear_gives(dtype, bias):
    torch.manual_seed(0)
    linear = torch.nn.Linear(96, 160, bias=bias, dtype=dtype)
    model = torch.nn.Sequential(linear)
    reference = torch.nn.Linear(96, 160, bias=bias, dtype=dtype)
    reference.load_state_dict(linear.state_dict())
    assert pack_linear_layers(model) == 1 and type(model[0]).__name__ == "PackedLinear"
    for shape in [(1, 1, 96), (1, 37, 96), (3, 5, 96), (96,)]:
        x = torch.randn(*shape, dtype=dtype)
        with torch.inference_mode():
            # fp32 single rows may sum in another order: equal to the last bit or two
            torch.testing.assert_close(model(x), reference(x), rtol=1e-6, atol=1e-6, msg=str(shape))


def test_the_engine_packs_a_cpu_model_and_it_generates_the_same_tokens(tiny_model_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    messages = [{"role": "user", "content": "Tell me about lighthouses."}]
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    plain = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
    ids = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt", return_dict=True)[
        "input_ids"
    ]
    with torch.inference_mode():
        expected = plain.generate(ids, max_new_tokens=12, do_sample=False)[0, ids.shape[1] :]
    engine = Engine()
    try:
        engine.load(LoadSettings(model=str(tiny_model_dir), dtype="float32")).result()
        kinds = [type(module).__name__ for module in engine.loaded.model.modules()]
        assert "Linear" not in kinds and kinds.count("PackedLinear") == 2 * 7 + 1  # 2 layers, and the head
        greedy = GenerationSettings().with_updates({"do_sample": False, "max_new_tokens": 12})
        final = engine.generate(messages, greedy).wait()
    finally:
        engine.close()
    assert isinstance(final, Finished)
    assert final.text == tokenizer.decode(expected, skip_special_tokens=True)


def test_a_tied_output_layer_is_copied_only_when_small(tiny_model_dir, monkeypatch):
    from transformers import AutoModelForCausalLM

    def packed_head(limit: int) -> bool:
        monkeypatch.setattr(packed_linear, "TIED_COPY_LIMIT_BYTES", limit)
        model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
        assert model.lm_head.weight is model.get_input_embeddings().weight  # tied
        pack_linear_layers(model)
        return type(model.lm_head).__name__ == "PackedLinear"

    assert packed_head(2**30)
    assert not packed_head(0)


def test_only_cpu_float32_and_bfloat16_pack():
    assert can_pack("cpu", "bfloat16") and can_pack("cpu", "float32")
    assert not can_pack("cpu", "float16") and not can_pack("cuda", "bfloat16")
