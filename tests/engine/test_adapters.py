"""LoRA adapters on the loaded model: replies equal peft's own, switching needs no reload, the KV
cache follows the weights, and every bad adapter is one clear line that leaves the model as it was."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import make_lora

from tui.engine import Engine, Finished, GenerationSettings, LoadSettings, Started
from tui.engine.adapter_control import parse_mix
from tui.engine.adapters import AdapterState, AppliedAdapter
from tui.engine.errors import AdapterError

GREEDY = GenerationSettings().with_updates({"do_sample": False, "max_new_tokens": 16})
HI = [{"role": "user", "content": "hi"}]


@pytest.fixture(scope="module")
def engine(tiny_model_dir: Path):
    """The tiny model in float32 (exact comparisons with plain peft), with its own engine: the
    tests here change its adapters."""
    engine = Engine()
    engine.load(LoadSettings(model=str(tiny_model_dir), dtype="float32")).result()
    yield engine
    engine.close()


@pytest.fixture
def fresh(engine: Engine):
    """The module's engine with no adapter loaded, before and after the test."""
    yield engine
    for name in engine.adapters.state.names:
        engine.adapters.unload(name).result()
    assert engine.adapters.state == AdapterState()


def reply(engine: Engine, messages=HI) -> tuple[str, Started, Finished]:
    """The greedy reply's text, its Started event (what was prefilled) and its Finished one."""
    events = list(engine.generate(messages, GREEDY))
    started = next(e for e in events if isinstance(e, Started))
    final = events[-1]
    assert isinstance(final, Finished), final
    return final.text, started, final


def peft_reply(model_dir: Path, adapters: dict[str, Path], mix: dict[str, float] | None = None) -> str:
    """The same greedy reply from plain transformers + peft (`PeftModel.from_pretrained`), the
    reference; a mix is peft's `add_weighted_adapter(combination_type="cat")`."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    names = list(adapters)
    model = PeftModel.from_pretrained(
        AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32), adapters[names[0]], adapter_name=names[0]
    )
    for name in names[1:]:
        model.load_adapter(adapters[name], adapter_name=name)
    if mix:
        model.add_weighted_adapter(list(mix), list(mix.values()), "mix", combination_type="cat")
        model.set_adapter("mix")
    model.eval()
    ids = tokenizer.apply_chat_template(HI, add_generation_prompt=True, return_tensors="pt", return_dict=True)
    with torch.inference_mode():
        out = model.generate(input_ids=ids["input_ids"], max_new_tokens=16, do_sample=False, pad_token_id=0)
    return tokenizer.decode(out[0, ids["input_ids"].shape[1] :], skip_special_tokens=True)


def test_an_adapters_reply_equals_peft_and_none_is_the_base(fresh, tiny_model_dir, tiny_adapters):
    base, _, final = reply(fresh)
    assert final.adapters == ()
    info = fresh.adapters.load(str(tiny_adapters["tone"])).result()
    assert (info.name, info.rank, info.peft_type, len(info.sha256)) == ("tone", 4, "LORA", 16)
    tuned, _, final = reply(fresh)
    assert tuned != base
    assert tuned == peft_reply(tiny_model_dir, {"tone": tiny_adapters["tone"]})
    assert final.adapters == (AppliedAdapter("tone", str(tiny_adapters["tone"]), info.sha256, 1.0),)
    fresh.adapters.use(None).result()
    assert reply(fresh)[0] == base


def test_a_none_a_gives_a_again_without_a_reload(fresh, tiny_adapters):
    model = fresh._loaded.model
    fresh.adapters.load(str(tiny_adapters["tone"])).result()
    first = reply(fresh)[0]
    assert fresh.adapters.use({}).result().label() == "none"
    fresh.adapters.use({"tone": 1.0}).result()
    assert reply(fresh)[0] == first
    assert fresh._loaded.model is model


def test_a_weighted_mix_equals_peft_add_weighted_adapter(fresh, tiny_model_dir, tiny_adapters):
    fresh.adapters.load(str(tiny_adapters["tone"])).result()
    fresh.adapters.load(str(tiny_adapters["style"])).result()
    state = fresh.adapters.use({"tone": 0.5, "style": 0.7}).result()
    assert state.label() == "tone×0.5+style×0.7"
    mixed, _, final = reply(fresh)
    assert [a.weight for a in final.adapters] == [0.5, 0.7]
    assert mixed == peft_reply(tiny_model_dir, tiny_adapters, {"tone": 0.5, "style": 0.7})


def test_a_switch_between_turns_equals_a_fresh_chat_with_that_adapter(fresh, tiny_adapters):
    """The KV cache of the first turn was computed with the base weights: a switch drops it (the
    second turn reads its whole prompt) and the reply is the one a fresh chat gets."""
    first = reply(fresh)[0]
    chat = HI + [{"role": "assistant", "content": first}, {"role": "user", "content": "and then?"}]
    fresh.adapters.load(str(tiny_adapters["tone"])).result()
    switched, started, _ = reply(fresh, chat)
    assert started.prefill_tokens == started.prompt_tokens
    fresh.turn_cache.drop()
    assert reply(fresh, chat)[0] == switched
    # Loading an adapter without using it, or unloading one not in use, keeps the cache.
    fresh.adapters.load(str(tiny_adapters["style"]), activate=False).result()
    again, started, _ = reply(fresh, chat)
    assert started.prefill_tokens < started.prompt_tokens and again == switched
    fresh.adapters.unload("style").result()
    assert reply(fresh, chat)[1].prefill_tokens < started.prompt_tokens


def test_the_token_view_records_an_adapters_reply(fresh, tiny_adapters):
    """Token probabilities (the token view's) are of the reply the adapter writes."""
    from tui.engine import TokenProbs

    fresh.adapters.load(str(tiny_adapters["tone"])).result()
    tuned = reply(fresh)[0]
    events = list(fresh.generate(HI, GREEDY, logprobs=3))
    choices = [choice for event in events if isinstance(event, TokenProbs) for choice in event.choices]
    assert events[-1].text == tuned and len(choices) == GREEDY.max_new_tokens
    assert all(choice.top_raw for choice in choices)


def test_unloading_the_last_adapter_gives_the_packed_base_back(fresh, tiny_adapters):
    base = reply(fresh)[0]
    assert type(fresh._loaded.model.model.layers[0].self_attn.q_proj).__name__ == "PackedLinear"
    fresh.adapters.load(str(tiny_adapters["tone"]), name="t").result()
    fresh.adapters.load(str(tiny_adapters["style"]), name="s").result()
    wrapped = fresh._loaded.model.model.layers[0].self_attn.q_proj
    assert type(wrapped.base_layer).__name__ == "PackedLinear"  # wrapped as it is: never unpacked to load
    assert fresh.adapters.unload("s").result().label() == "none"  # s was the one in use
    fresh.adapters.unload("t").result()
    assert type(fresh._loaded.model.model.layers[0].self_attn.q_proj).__name__ == "PackedLinear"
    assert not hasattr(fresh._loaded.model, "peft_config")
    assert reply(fresh)[0] == base


def test_merging_keeps_the_reply_and_switching_then_needs_a_reload(tiny_model_dir, tiny_adapters):
    engine = Engine()
    try:
        engine.load(LoadSettings(model=str(tiny_model_dir), dtype="float32")).result()
        engine.adapters.load(str(tiny_adapters["tone"])).result()
        tuned = reply(engine)[0]
        state = engine.adapters.merge().result()
        assert state.label() == "tone (merged)" and state.loaded == ()
        text, _, final = reply(engine)
        assert text == tuned and final.adapters[0].merged
        with pytest.raises(AdapterError, match="merged into the weights: reload the model"):
            engine.adapters.use({}).result()
    finally:
        engine.close()


def test_parse_mix():
    assert parse_mix("none") == {} and parse_mix("a") == {"a": 1.0}
    assert parse_mix("a=0.7, b=0.3") == {"a": 0.7, "b": 0.3}
    with pytest.raises(AdapterError, match="not a number"):
        parse_mix("a=lots")


# -- bad input: one clear line, the model and its adapters as they were --------------------------


def copy_adapter(source: Path, target: Path) -> Path:
    shutil.copytree(source, target)
    return target


def edit_config(folder: Path, **changes) -> Path:
    config = json.loads((folder / "adapter_config.json").read_text())
    (folder / "adapter_config.json").write_text(json.dumps(config | changes))
    return folder


def bad_adapter(kind: str, tiny_adapters, tmp_path: Path, tiny_model_dir: Path) -> Path:
    tone = tiny_adapters["tone"]
    if kind == "no config":
        folder = copy_adapter(tone, tmp_path / "bare")
        (folder / "adapter_config.json").unlink()
        return folder
    if kind == "corrupt":
        folder = copy_adapter(tone, tmp_path / "cut")
        weights = folder / "adapter_model.safetensors"
        weights.write_bytes(weights.read_bytes()[:-100])
        return folder
    if kind == "garbage":
        folder = copy_adapter(tone, tmp_path / "garbage")
        (folder / "adapter_model.safetensors").write_bytes(b"\xff" * 64)
        return folder
    if kind == "type":
        return edit_config(copy_adapter(tone, tmp_path / "prefix"), peft_type="PREFIX_TUNING")
    if kind == "remote code":
        folder = edit_config(
            copy_adapter(tone, tmp_path / "custom"),
            auto_mapping={"base_model_class": "MyModel", "parent_library": "transformers_modules.someone.modeling"},
        )
        return folder
    if kind == "pickle":
        folder = copy_adapter(tone, tmp_path / "pickled")
        (folder / "adapter_model.safetensors").rename(folder / "adapter_model.bin")
        return folder
    if kind in ("hidden size", "layers"):
        from transformers import AutoConfig, AutoModelForCausalLM

        config = AutoConfig.from_pretrained(tiny_model_dir)
        if kind == "hidden size":
            config.hidden_size, config.intermediate_size = 32, 64
        else:
            config.num_hidden_layers = 3
        other = tmp_path / f"other-{kind.replace(' ', '-')}"
        AutoModelForCausalLM.from_config(config).save_pretrained(other)
        return make_lora(other, tmp_path / "mismatched", 3, ["q_proj", "v_proj"])
    if kind == "architecture":
        base = tmp_path / "gpt2-base"
        base.mkdir()
        (base / "config.json").write_text(json.dumps({"model_type": "gpt2", "hidden_size": 768}))
        return edit_config(copy_adapter(tone, tmp_path / "for-gpt2"), base_model_name_or_path=str(base))
    if kind == "missing":
        return tmp_path / "nowhere"
    if kind == "dora":
        return edit_config(copy_adapter(tone, tmp_path / "dora"), use_dora=True)
    if kind == "modules to save":
        return peft_lora(tiny_model_dir, tmp_path / "head", ["q_proj"], modules_to_save=["lm_head"])
    if kind == "embedding weights":
        return peft_lora(tiny_model_dir, tmp_path / "emb", ["embed_tokens", "q_proj"], save_embedding_layers=True)
    raise AssertionError(kind)


def peft_lora(model_dir: Path, out: Path, targets: list[str], save_embedding_layers=False, **config) -> Path:
    """A LoRA adapter made with peft, with options of LoraConfig and save_pretrained."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(5)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    lora = LoraConfig(r=4, lora_alpha=8, target_modules=targets, init_lora_weights=False, **config)
    get_peft_model(model, lora).save_pretrained(out, save_embedding_layers=save_embedding_layers)
    return out


@pytest.mark.parametrize(
    ("kind", "fragment"),
    [
        ("no config", "is not a PEFT adapter (no adapter_config.json in it)"),
        ("corrupt", "adapter_model.safetensors is damaged"),
        ("garbage", "adapter_model.safetensors is damaged"),
        ("type", "is a PREFIX_TUNING adapter; chatui applies LoRA adapters"),
        ("remote code", "with --trust-remote-code"),
        ("pickle", "--allow-pickle only if you trust the source"),
        ("hidden size", "was made for a model with other sizes"),
        ("layers", "it adapts model.layers.2.self_attn"),
        ("architecture", "(gpt2, hidden size 768)"),
        ("missing", "adapter not found"),
        ("dora", "is a DoRA adapter (use_dora): chatui switches plain LoRA adapters"),
        ("modules to save", "also replaces whole layers (lm_head"),
        ("embedding weights", "also replaces whole layers (model.embed_tokens)"),
    ],
)
def test_a_bad_adapter_is_one_line_and_leaves_the_model_as_it_was(
    fresh, tiny_adapters, tiny_model_dir, tmp_path, kind, fragment
):
    fresh.adapters.load(str(tiny_adapters["style"])).result()
    before_state, before_reply = fresh.adapters.state, reply(fresh)[0]
    path = bad_adapter(kind, tiny_adapters, tmp_path, tiny_model_dir)
    with pytest.raises(AdapterError) as caught:
        fresh.adapters.load(str(path), name="bad").result()
    assert fragment in str(caught.value) and "\n" not in str(caught.value)
    assert fresh.adapters.state == before_state
    assert "bad" not in fresh._loaded.model.peft_config
    assert reply(fresh)[0] == before_reply


def test_a_base_model_that_differs_only_by_name_is_a_warning(fresh, tiny_adapters, tmp_path):
    folder = edit_config(
        copy_adapter(tiny_adapters["tone"], tmp_path / "renamed"), base_model_name_or_path="me/tiny-v2"
    )
    info = fresh.adapters.load(str(folder)).result()
    assert info.warnings == (
        f"adapter {folder} was trained on me/tiny-v2, not {fresh.info.name}; its shapes fit, so it is used",
    )


@pytest.mark.parametrize(
    ("call", "fragment"),
    [
        (lambda a, path: a.load(path, name="has.dot"), "use letters, digits, - and _"),
        (lambda a, path: a.load(path, name="none"), "'none' means the base model"),
        (lambda a, path: a.load(path, name="tone"), "an adapter named tone is loaded already"),
        (lambda a, path: a.use({"nope": 1}), "no adapter named nope is loaded (loaded: tone)"),
        (lambda a, path: a.use({"tone": 99}), "is not a number from -10 to 10"),
        (lambda a, path: a.unload("nope"), "no adapter named nope is loaded"),
        (lambda a, path: a.use({}).result() and a.merge(), "no adapter is in use to merge"),
    ],
)
def test_bad_names_and_weights_are_one_line(fresh, tiny_adapters, call, fragment):
    path = str(tiny_adapters["tone"])
    fresh.adapters.load(path).result()
    with pytest.raises(AdapterError, match=fragment.replace("(", r"\(").replace(")", r"\)")):
        call(fresh.adapters, path).result()


def test_a_hub_id_loads_from_the_cache_offline_and_says_so_when_it_is_not_there(
    fresh, tiny_adapters, tmp_path, monkeypatch
):
    from huggingface_hub import constants

    cache = tmp_path / "hub"
    snapshot = cache / "models--someone--tiny-tone" / "snapshots" / ("0" * 40)
    shutil.copytree(tiny_adapters["tone"], snapshot)
    (cache / "models--someone--tiny-tone" / "refs").mkdir()
    (cache / "models--someone--tiny-tone" / "refs" / "main").write_text("0" * 40)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    info = fresh.adapters.load("someone/tiny-tone").result()
    assert (info.name, info.path, info.folder) == ("tiny-tone", "someone/tiny-tone", str(snapshot))
    with pytest.raises(AdapterError, match="is not in the Hugging Face cache and the Hub is offline"):
        fresh.adapters.load("someone/elsewhere").result()


def test_no_model_and_a_closed_engine_are_one_line(tiny_adapters):
    engine = Engine()
    with pytest.raises(AdapterError, match="no model is loaded"):
        engine.adapters.load(str(tiny_adapters["tone"])).result()
    engine.close()
    with pytest.raises(AdapterError, match="the engine is shut down"):
        engine.adapters.use({}).result()


@pytest.mark.timeout(600)
def test_an_adapter_on_the_real_smollm2_equals_peft(smollm2_fp32_engine, smollm2_dir, tmp_path):
    """The real path: a LoRA made with peft on the bundled SmolLM2 changes its reply, and the
    reply equals peft's own."""
    adapter = make_lora(smollm2_dir, tmp_path / "smol-lora", 5, ["q_proj", "v_proj"], rank=2)
    engine = smollm2_fp32_engine
    base = reply(engine)[0]
    try:
        info = engine.adapters.load(str(adapter)).result()
        assert info.warnings == ()  # trained on the same model, named by its converted folder
        tuned = reply(engine)[0]
    finally:
        engine.adapters.unload("smol-lora").result()
    assert tuned != base and tuned == peft_reply(smollm2_dir, {"smol-lora": adapter})
    assert reply(engine)[0] == base


def test_on_int4_an_adapter_works_unmerged_and_merging_says_what_to_do(tiny_model_dir, tiny_adapters):
    """peft applies LoRA on torchao's int4 layers (unmerged); it cannot merge into them: one line
    that offers the bf16 copy."""
    engine = Engine()
    try:
        engine.load(LoadSettings(model=str(tiny_model_dir), quantization="int4", dtype="bfloat16")).result()
        base = reply(engine)[0]
        engine.adapters.load(str(tiny_adapters["tone"])).result()
        assert reply(engine)[0] != base
        with pytest.raises(AdapterError, match="cannot be merged into int4 .* --dtype bfloat16 --merge-adapter"):
            engine.adapters.merge().result()
        engine.adapters.unload("tone").result()
        assert reply(engine)[0] == base
    finally:
        engine.close()


def test_on_bnb_4bit_an_adapter_works_and_merges(tiny_model_dir, tiny_adapters):
    engine = Engine()
    try:
        engine.load(LoadSettings(model=str(tiny_model_dir), quantization="bnb-4bit", dtype="bfloat16")).result()
        base = reply(engine)[0]
        engine.adapters.load(str(tiny_adapters["tone"])).result()
        assert reply(engine)[0] != base
        engine.adapters.use({}).result()
        assert reply(engine)[0] == base
        engine.adapters.use({"tone": 1.0}).result()
        assert engine.adapters.merge().result().label() == "tone (merged)"
        assert reply(engine)[2].adapters[0].merged
    finally:
        engine.close()


def test_a_lora_on_the_embeddings_loads_and_changes_the_reply(fresh, tiny_model_dir, tmp_path):
    """LoRA on embed_tokens (lora_embedding_A/B, no whole layers saved) is a LoRA like any other."""
    folder = peft_lora(tiny_model_dir, tmp_path / "emb-lora", ["embed_tokens", "q_proj"])
    base = reply(fresh)[0]
    fresh.adapters.load(str(folder), name="emb").result()
    assert fresh.adapters.state.active == (("emb", 1.0),) and reply(fresh)[0] != base


def test_a_switch_peft_refuses_is_one_line_and_keeps_the_mix_in_use(fresh, tiny_adapters, monkeypatch):
    fresh.adapters.load(str(tiny_adapters["tone"]), name="tone").result()
    fresh.adapters.load(str(tiny_adapters["style"]), name="style", activate=False).result()
    before = reply(fresh)[0]
    model = fresh._loaded.model
    original = model.set_adapter

    def refuse(names):
        if "style" in names:
            raise ValueError("Adapter tone not found in {'style'}")
        return original(names)

    monkeypatch.setattr(model, "set_adapter", refuse)
    with pytest.raises(AdapterError, match=r"^peft cannot use style: Adapter tone not found"):
        fresh.adapters.use({"style": 1.0}).result()
    assert fresh.adapters.state.active == (("tone", 1.0),) and reply(fresh)[0] == before


def test_a_folder_given_relative_is_recorded_by_its_full_path(fresh, tiny_adapters, monkeypatch):
    """A reply records where its adapter is: reopening the chat from another folder still finds it."""
    monkeypatch.chdir(tiny_adapters["tone"].parent)
    info = fresh.adapters.load("tone", name="relative").result()
    assert info.path == str(tiny_adapters["tone"].resolve())
