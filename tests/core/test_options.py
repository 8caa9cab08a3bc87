"""Options: the defaults, config.toml on top, the command line on top of that."""

from tui.cli.main import parse_args
from tui.store.config import load_config


def write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


def test_precedence_defaults_config_flags(tmp_path):
    path = write(
        tmp_path / "config.toml",
        """
theme = "chatui-paper"
system_prompt = "From config."
[model]
dtype = "bfloat16"
model = "/models/from-config"
[generation]
temperature = 0.2
top_k = 10
""",
    )
    config = load_config(path)
    assert config.errors == []
    options = parse_args(["temperature=0.9", "--dtype", "float32"])
    options.apply_config(config)
    assert options.generation.temperature == 0.9  # flag beats config
    assert options.generation.top_k == 10  # config beats default
    assert options.generation.top_p == 0.9  # default
    assert options.load.dtype == "float32" and options.load.model == "/models/from-config"
    assert options.system_prompt == "From config." and options.theme == "chatui-paper"


def test_the_configured_tool_servers_and_their_problems_come_with_the_options(tmp_path):
    path = write(
        tmp_path / "config.toml",
        """
[mcp.servers.calc]
command = "python"
args = ["server.py"]
[mcp.servers.nokey]
command = "run"
env = { K = "${CHATUI_TEST_UNSET_VARIABLE}" }
""",
    )
    options = parse_args(["--prompt", "hi"])
    options.apply_config(load_config(path))
    assert [server.name for server in options.tool_servers] == ["calc"]
    assert len(options.tool_problems) == 1 and "CHATUI_TEST_UNSET_VARIABLE" in options.tool_problems[0]
