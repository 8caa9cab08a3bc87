"""Generation settings, the system prompt and presets: the sidebar, /set, /system, the palette."""

from __future__ import annotations

from pilot import make_app, reply_texts, run, send, wait_for
from textual.widgets import Select

from tui.store.config import Config
from tui.widgets.settings_panel import SettingsPanel

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
        app = make_app(tmp_path)
        async with app.run_test() as pilot:
            await wait_for(pilot, lambda: app.chat_screen.state == "ready")
            before = app.chat_screen.session.generation.as_dict()
            for command, named in BAD_SETS:
                count = len(app._notifications)
                await send(pilot, app, command)
                await pilot.pause()
                new = list(app._notifications)[count:]
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
        app = make_app(tmp_path)
        async with app.run_test(size=(120, 50)) as pilot:
            await wait_for(pilot, lambda: app.chat_screen.state == "ready" and app.chat_screen.sidebar is not None)
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
        app = make_app(tmp_path, config=config)
        async with app.run_test(size=(120, 50)) as pilot:
            await wait_for(pilot, lambda: app.chat_screen.state == "ready" and app.chat_screen.sidebar is not None)
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
