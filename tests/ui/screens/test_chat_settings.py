"""Generation settings, the system prompt and presets: the sidebar, /set, /system, the palette."""

from __future__ import annotations

import pytest
from fakes import ScriptedEngine
from pilot import booted, message_views, notes, reply_texts, run, send, wait_for
from textual.widgets import Select

from tui.store.config import Config
from tui.ui.widgets.settings_panel import SettingsPanel

BAD_SETS = [
    ("/set temperature=nan", "temperature"),
    ("/set temperature=inf", "temperature"),
    ("/set top_k=1e999", "top_k"),
    ("/set max_new_tokens=abc", "max_new_tokens"),
    ("/set temperature=", "temperature"),
    ("/set temperature=0.5 top_k=abc", "top_k"),  # all or nothing: temperature is not changed
    ("/set do_sample=maybe", "do_sample"),
    ("/set seed=-1", "seed"),
    ("/set top_p=1.0000001", "top_p"),
    ("/set =5", "key=value"),
    ("/set nonsense=1", "nonsense"),
    ("/set", "key=value"),
]


def test_bad_set_values_are_rejected_and_change_nothing(tmp_path):
    async def scenario():
        async with booted(tmp_path) as (pilot, app):
            before = app.chat_screen.session.generation.as_dict()
            for command, named in BAD_SETS:
                count = len(app.notified)
                await send(pilot, app, command)
                await pilot.pause()
                new = app.notified[count:]
                assert len(new) == 1 and new[0].severity == "error", (command, [n.message for n in new])
                assert named in new[0].message, (command, new[0].message)
                assert app.chat_screen.session.generation.as_dict() == before, command
                assert app.chat_screen.messages == []  # nothing was sent to the model
            await send(pilot, app, "hello")
            await wait_for(pilot, lambda: app.chat_screen.state == "ready" and len(reply_texts(app)) == 1)
            assert app.engine.calls[-1][1].as_dict() == before

    run(scenario())


def test_sidebar_form_changes_apply_to_the_next_generation(tmp_path):
    async def scenario():
        async with booted(tmp_path, size=(120, 50)) as (pilot, app):
            field = app.query_one("#param-temperature")
            field.value = "1.3"
            await pilot.pause()
            assert app.chat_screen.session.generation.temperature == 1.3
            field.value = "-1"
            await pilot.pause()
            assert app.chat_screen.session.generation.temperature == 1.3
            error = app.query_one("#error-temperature")
            assert error.display and "out of range" in str(error.render())
            app.query_one("#param-top_k").value = "1.5"
            await pilot.pause()
            assert app.chat_screen.session.generation.top_k == 50
            app.query_one("#param-max_new_tokens").value = "0"
            await pilot.pause()
            assert app.chat_screen.session.generation.max_new_tokens == 512
            app.query_one("#param-do_sample").value = False
            await pilot.pause()
            assert app.chat_screen.session.generation.do_sample is False
            await send(pilot, app, "hi")
            await wait_for(pilot, lambda: app.chat_screen.state == "ready" and len(reply_texts(app)) == 1)
            settings = app.engine.calls[-1][1]
            assert settings.temperature == 1.3 and settings.do_sample is False and settings.top_k == 50
            # Leaving the invalid field puts the value in use back.
            app.query_one("#param-top_k").focus()
            app.chat_screen.prompt_input.focus()
            await pilot.pause()
            assert app.query_one("#param-top_k").value == "50"

    run(scenario())


def test_presets_from_sidebar_and_user_presets(tmp_path):
    async def scenario():
        config = Config(path=tmp_path / "config.toml", presets={"mine": {"temperature": 0.42, "top_k": 7}})
        async with booted(tmp_path, config=config, size=(120, 50)) as (pilot, app):
            panel = app.query_one(SettingsPanel)
            generation = lambda: app.chat_screen.session.generation  # noqa: E731
            assert panel.preset_names == ["precise", "balanced", "creative", "mine"]
            app.query_one("#preset", Select).value = "precise"
            await pilot.pause()
            assert generation().do_sample is False
            app.query_one("#preset", Select).value = "mine"
            await pilot.pause()
            assert (generation().temperature, generation().top_k) == (0.42, 7)
            assert app.query_one("#param-temperature").value == "0.42"
            app.query_one("#preset-name").value = "saved"
            await pilot.click("#save-preset")
            await pilot.pause()
            assert "saved" in panel.preset_names
            assert [option[0] for option in app.query_one("#preset", Select)._options][-1] == "saved"
            from tui.store.config import load_config

            assert load_config(config.path).presets["saved"]["temperature"] == 0.42

    run(scenario())


def test_any_generation_field_is_listed_in_the_sidebar_and_status_and_can_be_removed(tmp_path):
    async def scenario():
        async with booted(tmp_path, "num_beams=2", "min_new_tokens=5", size=(120, 50)) as (pilot, app):
            chat = app.chat_screen
            await send(pilot, app, "/set eos_token_id=[2,3] temperature=0.3")
            await pilot.pause()
            labels = [str(label.render()) for label in app.query(".changed-label")]
            assert labels == ["temperature = 0.3", "num_beams = 2", "min_new_tokens = 5", "eos_token_id = [2, 3]"]
            await send(pilot, app, "/status")
            await pilot.pause()
            status = message_views(chat)[-1].text
            assert (
                "changed from the defaults: `temperature=0.3 num_beams=2 min_new_tokens=5 eos_token_id=[2, 3]`"
                in status
            )
            removes = {button.name: button for button in app.query(".remove-setting")}
            removes["num_beams"].press()
            await pilot.pause()
            assert "num_beams" not in chat.session.generation.values
            assert [str(label.render()) for label in app.query(".changed-label")][1:] == [
                "min_new_tokens = 5",
                "eos_token_id = [2, 3]",
            ]
            await send(pilot, app, "/set temprature=1")
            await pilot.pause()
            assert any("did you mean temperature?" in n for n in notes(app))

    run(scenario())


def test_beam_search_says_its_reply_comes_when_done_and_the_reply_arrives_whole(tmp_path):
    async def scenario():
        async with booted(
            tmp_path, "num_beams=2", engine=ScriptedEngine(["The capital of France is Paris."]), size=(120, 40)
        ) as (pilot, app):
            chat = app.chat_screen
            await send(pilot, app, "Capital of France?")
            await wait_for(pilot, lambda: chat.state == "ready" and reply_texts(app), 10)
            assert reply_texts(app) == ["The capital of France is Paris."]
            assert any(
                "num_beams=2: beam search cannot stream; the reply appears when it is done" in n for n in notes(app)
            )

    run(scenario())


@pytest.mark.parametrize(
    "command, check",
    [
        ("!set temperature=0.25", lambda chat, app: chat.session.generation.temperature == 0.25),
        ("!status", lambda chat, app: "**Status**" in message_views(chat)[-1].text),
        ("!help", lambda chat, app: type(app.screen).__name__ == "HelpScreen"),
        ("!clear", lambda chat, app: chat.messages == []),
        ("!exit", lambda chat, app: app.return_code == 0 and not app.is_running),
    ],
)
def test_transformers_chat_commands_work_as_aliases(tmp_path, command, check):
    async def scenario():
        async with booted(tmp_path) as (pilot, app):
            chat = app.chat_screen
            await send(pilot, app, "hello")
            await wait_for(pilot, lambda: chat.state == "ready" and len(chat.messages) == 2)
            await send(pilot, app, command)
            await pilot.pause(0.2)
            assert check(chat, app)

    run(scenario())


def test_bang_save_writes_transformers_chat_json_where_it_does(tmp_path, monkeypatch):
    import json

    monkeypatch.chdir(tmp_path)

    async def scenario():
        async with booted(tmp_path) as (pilot, app):
            chat = app.chat_screen
            await send(pilot, app, "hello")
            await wait_for(pilot, lambda: chat.state == "ready" and len(chat.messages) == 2)
            await send(pilot, app, "!save")
            await pilot.pause(0.2)
            await send(pilot, app, "!save named.json")
            await pilot.pause(0.2)
            await send(pilot, app, "!important: this is a message, not a command")
            await wait_for(pilot, lambda: chat.state == "ready" and len(chat.messages) == 4)

    run(scenario())
    [saved] = list((tmp_path / "chat_history" / "scripted-model").glob("chat_*.json"))
    for path in (saved, tmp_path / "named.json"):
        data = json.loads(path.read_text())
        assert [m["content"] for m in data["chat_history"]] == ["hello", "Hello! How can I help?"]
        assert data["settings"]["config"]["max_new_tokens"] == 512
