"""Slash commands: what is one, and how it is read."""

from tui.ui.slash import SlashError, is_slash_command, parse_slash


def test_slash_parsing():
    assert is_slash_command("/set a=1") and not is_slash_command("//not a command") and not is_slash_command("hi")
    command = parse_slash("/SET temperature=0.5  top_k=3")
    assert command.name == "set" and command.words() == ["temperature=0.5", "top_k=3"]
    try:
        parse_slash("/frobnicate")
    except SlashError as exc:
        assert "unknown command /frobnicate" in str(exc)
    else:
        raise AssertionError("an unknown command must be refused")
