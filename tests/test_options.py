"""Options: the defaults, config.toml on top, the command line on top of that."""

from tui.cli import parse_args
from tui.store.config import load_config


def write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


def test_precedence_defaults_config_flags(tmp_path):
    path = write(tmp_path / "config.toml", """
theme = "chatui-paper"
system_prompt = "From config."
[model]
dtype = "bfloat16"
model = "/models/from-config"
[generation]
temperature = 0.2
top_k = 10
""")
    config = load_config(path)
    assert config.errors == []
    options = parse_args(["temperature=0.9", "--dtype", "float32"])
    options.apply_config(config)
    assert options.generation.temperature == 0.9  # flag beats config
    assert options.generation.top_k == 10  # config beats default
    assert options.generation.top_p == 0.9  # default
    assert options.load.dtype == "float32" and options.load.model == "/models/from-config"
    assert options.system_prompt == "From config." and options.theme == "chatui-paper"
