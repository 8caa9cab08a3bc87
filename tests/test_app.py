"""The app driven with Pilot: on a scripted engine (fast, deterministic), on the tiny real model,
and once on the real SmolLM2."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from fakes import ScriptedEngine
from tui.app import ChatApp
from tui.cli import parse_args
from tui.store import AutoSaver, Library
from tui.store.config import Config
from tui.widgets.message import MessageView
from tui.widgets.settings_panel import SettingsPanel


def run(coro):
    return asyncio.run(coro)


def make_app(tmp_path: Path, *args: str, engine=None, config: Config | None = None, **kwargs) -> ChatApp:
    saver = AutoSaver(Library(tmp_path / "library.sqlite3"))
    return ChatApp(parse_args(list(args)), config or Config(path=tmp_path / "config.toml"),
                   engine=engine or ScriptedEngine(), saver=saver, **kwargs)


async def wait_for(pilot, condition, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for the app")
        await pilot.pause(0.02)


async def send(pilot, app: ChatApp, text: str) -> None:
    app.prompt_input.load_text(text)
    app.prompt_input.focus()
    await pilot.press("enter")


def reply_texts(app: ChatApp) -> list[str]:
    return [m.content for m in app.messages if m.role == "assistant"]


def test_send_shows_the_reply_its_stats_and_saves_it(tmp_path):
    async def scenario():
        app = make_app(tmp_path, engine=ScriptedEngine(["Paris is the **capital**."]))
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_for(pilot, lambda: app.state == "ready" and app.sidebar is not None)
            await send(pilot, app, "What is the capital of France?")
            await wait_for(pilot, lambda: app.state == "ready" and len(reply_texts(app)) == 1)
            await pilot.pause()
            assert reply_texts(app) == ["Paris is the **capital**."]
            views = app.chat.messages()
            assert [v.role for v in views] == ["user", "assistant"]
            assert "20.0 tok/s" in app.status.info.render() and "TTFT 0.25 s" in app.status.info.render()
            stats = views[1].query_one(".message-stats").render()
            assert "tokens · 20.0 tok/s" in str(stats)
            conv_id = app.saver.conversation.id
        stored = Library(tmp_path / "library.sqlite3").get(conv_id)
        assert [m.content for m in stored.messages] == ["What is the capital of France?", "Paris is the **capital**."]
        assert stored.title == "What is the capital of France?"

    run(scenario())


def test_message_typed_while_loading_is_sent_when_ready(tmp_path):
    async def scenario():
        engine = ScriptedEngine(hold_load=True)
        app = make_app(tmp_path, engine=engine)
        async with app.run_test() as pilot:
            await send(pilot, app, "early bird")
            await pilot.pause()
            assert app.state == "loading" and engine.calls == [] and app.pending_send
            engine.hold_load = False
            app.start_load(app.load_settings)
            await wait_for(pilot, lambda: app.state == "ready" and len(reply_texts(app)) == 1)
            assert engine.calls[0][0][-1] == {"role": "user", "content": "early bird"}

    run(scenario())


def test_stop_keeps_the_partial_reply_marked_stopped(tmp_path):
    async def scenario():
        long_reply = " ".join(f"w{i}" for i in range(400))
        app = make_app(tmp_path, engine=ScriptedEngine([long_reply], token_delay=0.01))
        async with app.run_test() as pilot:
            await wait_for(pilot, lambda: app.state == "ready" and app.sidebar is not None)
            await send(pilot, app, "talk")
            await wait_for(pilot, lambda: app._live_tokens >= 5)
            await pilot.press("escape")
            await wait_for(pilot, lambda: app.state == "ready" and app.sidebar is not None)
            reply = app.messages[-1]
            assert reply.status == "stopped" and reply.content.startswith("w0 w1 w2")
            assert len(reply.content.split()) < 400
            assert "stopped" in str(app.chat.messages()[-1].query_one(".message-header").render())

    run(scenario())


def test_regenerate_replaces_the_reply_and_keeps_the_old_as_a_version(tmp_path):
    async def scenario():
        app = make_app(tmp_path, engine=ScriptedEngine(["first answer", "second answer"]))
        async with app.run_test() as pilot:
            await wait_for(pilot, lambda: app.state == "ready" and app.sidebar is not None)
            await send(pilot, app, "question")
            await wait_for(pilot, lambda: app.state == "ready" and reply_texts(app) == ["first answer"])
            await pilot.press("ctrl+r")
            await wait_for(pilot, lambda: app.state == "ready" and reply_texts(app) == ["second answer"])
            views = app.chat.messages()
            assert [v.text for v in views] == ["question", "second answer"]
            assert "version 2/2" in str(views[1].query_one(".message-header").render())
            # The regenerated prompt did not include the old reply.
            assert app.engine.calls[1][0] == [{"role": "user", "content": "question"}]
            views[1].focus()
            await pilot.press("left")
            await wait_for(pilot, lambda: app.state == "ready" and reply_texts(app) == ["first answer"])
            await pilot.press("right")
            await wait_for(pilot, lambda: app.state == "ready" and reply_texts(app) == ["second answer"])

    run(scenario())


def test_edit_last_message_sends_a_new_version(tmp_path):
    async def scenario():
        app = make_app(tmp_path, engine=ScriptedEngine(["one", "two"]))
        async with app.run_test() as pilot:
            await wait_for(pilot, lambda: app.state == "ready" and app.sidebar is not None)
            await send(pilot, app, "original")
            await wait_for(pilot, lambda: app.state == "ready" and reply_texts(app) == ["one"])
            await pilot.press("ctrl+g")
            assert app.prompt_input.text == "original"
            await send(pilot, app, "edited")
            await wait_for(pilot, lambda: app.state == "ready" and reply_texts(app) == ["two"])
            assert [m.content for m in app.messages] == ["edited", "two"]
            user_view = app.chat.messages()[0]
            assert "version 2/2" in str(user_view.query_one(".message-header").render())

    run(scenario())


def test_continue_extends_a_stopped_reply(tmp_path):
    async def scenario():
        engine = ScriptedEngine(["alpha beta gamma delta " * 50, "and more"], token_delay=0.005)
        app = make_app(tmp_path, engine=engine)
        async with app.run_test() as pilot:
            await wait_for(pilot, lambda: app.state == "ready" and app.sidebar is not None)
            await send(pilot, app, "go")
            await wait_for(pilot, lambda: app._live_tokens >= 3)
            await pilot.press("escape")
            await wait_for(pilot, lambda: app.state == "ready" and app.sidebar is not None)
            partial = app.messages[-1].content
            await pilot.press("ctrl+t")
            await wait_for(pilot, lambda: app.state == "ready" and app.messages[-1].content != partial)
            assert app.messages[-1].content == partial + "and more"
            assert engine.calls[1][0][-1] == {"role": "assistant", "content": partial}
            assert len(app.messages) == 2

    run(scenario())


def test_slash_commands(tmp_path):
    async def scenario():
        app = make_app(tmp_path)
        async with app.run_test() as pilot:
            await wait_for(pilot, lambda: app.state == "ready" and app.sidebar is not None)
            await send(pilot, app, "/set temperature=0.3 max_new_tokens=64")
            await pilot.pause()
            assert app.generation.temperature == 0.3 and app.generation.max_new_tokens == 64
            await send(pilot, app, "/set temperature=-1")
            await pilot.pause()
            assert app.generation.temperature == 0.3
            assert any("temperature" in n.message and "out of range" in n.message for n in app._notifications)
            await send(pilot, app, "/set max_new_tokens=999999")
            await pilot.pause()
            assert app.generation.max_new_tokens == 64  # beyond the 4096-token context
            await send(pilot, app, "/system Answer in French.")
            await pilot.pause()
            assert app.system_prompt == "Answer in French."
            await send(pilot, app, "/status")
            await pilot.pause()
            note = app.chat.messages()[-1]
            assert "temperature=0.3" in note.text and "scripted-model" in note.text
            await send(pilot, app, "/bogus")
            await pilot.pause()
            assert any("unknown command /bogus" in n.message for n in app._notifications)
            await send(pilot, app, "/help")
            await pilot.pause()
            assert "/set" in app.chat.messages()[-1].text
            await send(pilot, app, "hello")
            await wait_for(pilot, lambda: app.state == "ready" and len(reply_texts(app)) == 1)
            sent_messages, sent_settings = app.engine.calls[-1]
            assert sent_messages[0] == {"role": "system", "content": "Answer in French."}
            assert sent_settings.temperature == 0.3
            await send(pilot, app, "/clear")
            await pilot.pause()
            assert app.messages == [] and app.chat.messages() == []

    run(scenario())


def test_typing_scrolling_and_palette_work_while_streaming(tmp_path):
    async def scenario():
        reply = "\n\n".join(f"Paragraph {i} with some words." for i in range(300))
        app = make_app(tmp_path, engine=ScriptedEngine([reply], token_delay=0.002))
        async with app.run_test(size=(100, 30)) as pilot:
            await wait_for(pilot, lambda: app.state == "ready" and app.sidebar is not None)
            await send(pilot, app, "write a lot")
            await wait_for(pilot, lambda: app._live_tokens >= 20)
            await pilot.press("h", "i")
            assert app.prompt_input.text == "hi" and app.state == "generating"
            app.chat.scroll_home(animate=False)
            await pilot.pause()
            assert app.chat.scroll_y == 0 and app.state == "generating"
            await pilot.press("ctrl+p")
            await pilot.pause()
            assert app.screen.__class__.__name__ == "CommandPalette"
            await pilot.press("escape")
            await pilot.press("escape")
            await wait_for(pilot, lambda: app.state == "ready" and app.sidebar is not None)
            assert app.messages[-1].status in ("stopped", "ok")

    run(scenario())


def test_generation_failure_keeps_partial_text_and_the_next_turn_works(tmp_path):
    async def scenario():
        engine = ScriptedEngine(["one two three four five", "fine again"], fail_after=3)
        app = make_app(tmp_path, engine=engine)
        async with app.run_test() as pilot:
            await wait_for(pilot, lambda: app.state == "ready" and app.sidebar is not None)
            await send(pilot, app, "hi")
            await wait_for(pilot, lambda: app.state == "ready" and len(app.messages) == 2)
            failed = app.messages[-1]
            assert failed.status == "failed" and failed.content == "one two three "
            assert any("simulated" in n.message for n in app._notifications)
            engine.fail_after = None
            await send(pilot, app, "again")
            await wait_for(pilot, lambda: app.state == "ready" and len(app.messages) == 4)
            assert app.messages[-1].content == "fine again"
            assert {"role": "assistant", "content": "one two three "} not in engine.calls[-1][0]

    run(scenario())


def test_load_failure_is_shown_and_the_app_keeps_running(tmp_path):
    async def scenario():
        engine = ScriptedEngine(load_error="model path not found: /nope")
        app = make_app(tmp_path, "/nope", engine=engine)
        async with app.run_test() as pilot:
            await wait_for(pilot, lambda: app.state == "error")
            assert "error" in app.status.info.render()
            assert any("model path not found" in n.message for n in app._notifications)
            await send(pilot, app, "still here?")
            await pilot.pause()
            assert app.pending_send and engine.calls == []
            app.apply_load_settings(app.load_settings.replace(model="good"))
            await wait_for(pilot, lambda: app.state == "ready" and len(reply_texts(app)) == 1)

    run(scenario())


def test_control_sequences_in_output_render_as_inert_text(tmp_path):
    hostile = "clear\x1b[2J now \x1b]52;c;ZXZpbA==\x07 link \x1b]8;;http://x\x1b\\y\x1b]8;;\x1b\\ bell\x07 back\x08 cr\r end"

    async def scenario():
        app = make_app(tmp_path, engine=ScriptedEngine([hostile]))
        async with app.run_test() as pilot:
            await wait_for(pilot, lambda: app.state == "ready" and app.sidebar is not None)
            await send(pilot, app, "hi")
            await wait_for(pilot, lambda: app.state == "ready" and len(reply_texts(app)) == 1)
            await pilot.pause()
            body = app.chat.messages()[-1].body
            shown = body.source
            assert "\x1b" not in shown and "\x07" not in shown and "\x08" not in shown and "\r" not in shown
            assert "␛[2J" in shown and "␇" in shown
            assert reply_texts(app) == [hostile]  # the stored text is the model's own
            assert body._open_links is False

    run(scenario())


def test_sidebar_form_changes_apply_to_the_next_generation(tmp_path):
    async def scenario():
        app = make_app(tmp_path)
        async with app.run_test(size=(120, 50)) as pilot:
            await wait_for(pilot, lambda: app.state == "ready" and app.sidebar is not None)
            field = app.query_one("#param-temperature")
            field.value = "1.3"
            await pilot.pause()
            assert app.generation.temperature == 1.3
            field.value = "-1"
            await pilot.pause()
            assert app.generation.temperature == 1.3
            error = app.query_one("#error-temperature")
            assert error.display and "out of range" in str(error.render())
            app.query_one("#param-top_k").value = "1.5"
            await pilot.pause()
            assert app.generation.top_k == 50
            app.query_one("#param-max_new_tokens").value = "0"
            await pilot.pause()
            assert app.generation.max_new_tokens == 512
            app.query_one("#param-do_sample").value = False
            await pilot.pause()
            assert app.generation.do_sample is False
            await send(pilot, app, "hi")
            await wait_for(pilot, lambda: app.state == "ready" and len(reply_texts(app)) == 1)
            settings = app.engine.calls[-1][1]
            assert settings.temperature == 1.3 and settings.do_sample is False and settings.top_k == 50
            # Leaving the invalid field puts the value in use back.
            app.query_one("#param-top_k").focus()
            app.prompt_input.focus()
            await pilot.pause()
            assert app.query_one("#param-top_k").value == "50"

    run(scenario())


def test_presets_from_sidebar_and_user_presets(tmp_path):
    async def scenario():
        config = Config(path=tmp_path / "config.toml", presets={"mine": {"temperature": 0.42, "top_k": 7}})
        app = make_app(tmp_path, config=config)
        async with app.run_test(size=(120, 50)) as pilot:
            await wait_for(pilot, lambda: app.state == "ready" and app.sidebar is not None)
            panel = app.query_one(SettingsPanel)
            assert panel.preset_names() == ["precise", "balanced", "creative", "mine"]
            panel.apply_preset("precise")
            assert app.generation.do_sample is False
            panel.apply_preset("mine")
            assert (app.generation.temperature, app.generation.top_k) == (0.42, 7)
            assert app.query_one("#param-temperature").value == "0.42"
            app.query_one("#preset-name").value = "saved"
            panel.save_preset()
            await pilot.pause()
            assert "saved" in panel.preset_names()
            from tui.store.config import load_config

            assert load_config(config.path).presets["saved"]["temperature"] == 0.42

    run(scenario())


def test_apply_with_a_bad_path_keeps_the_old_model(tmp_path, tiny_model_dir):
    from tui.engine import Engine

    async def scenario():
        app = make_app(tmp_path, str(tiny_model_dir), "max_new_tokens=5", engine=Engine())
        async with app.run_test(size=(120, 50)) as pilot:
            await wait_for(pilot, lambda: app.state == "ready", 120)
            app.query_one("#load-model").value = "/no/such/model"
            app.query_one(SettingsPanel).apply_load()
            await wait_for(pilot, lambda: app.state != "loading" and app.model_info is not None, 120)
            await pilot.pause()
            assert app.model_info.source == str(tiny_model_dir)
            assert any("model path not found: /no/such/model" in n.message for n in app._notifications)
            await send(pilot, app, "hi")
            await wait_for(pilot, lambda: app.state == "ready" and len(reply_texts(app)) == 1, 60)

    run(scenario())


def test_unavailable_options_are_shown_disabled_with_the_reason(tmp_path):
    async def scenario():
        app = make_app(tmp_path)
        async with app.run_test(size=(120, 50)) as pilot:
            await wait_for(pilot, lambda: app.state == "ready" and app.sidebar is not None)
            select = app.query_one("#load-device")
            labels = [str(label) for label, _ in select._options]
            assert "cuda (unavailable: no CUDA GPU)" in labels
            select.value = "cuda"
            await pilot.pause()
            app.query_one(SettingsPanel).apply_load()
            await pilot.pause()
            assert "cannot work here" in str(app.query_one("#load-error").render())
            assert len(app.engine.loads) == 1  # no reload was tried

    run(scenario())


def test_conversations_browser_search_open_and_restore_settings(tmp_path):
    async def scenario():
        library = Library(tmp_path / "library.sqlite3")
        old = library.create(model="scripted-model", generation_settings={"temperature": 0.25},
                             system_prompt="Be terse.")
        library.add_message(old.id, "user", "Tell me about penguins")
        library.add_message(old.id, "assistant", "Penguins are flightless birds.")
        other = library.create(model="scripted-model")
        library.add_message(other.id, "user", "Something else entirely")
        library.close()
        app = make_app(tmp_path)
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_for(pilot, lambda: app.state == "ready" and app.sidebar is not None)
            await pilot.press("ctrl+o")
            await pilot.pause()
            assert app.screen.__class__.__name__ == "ConversationBrowser"
            await pilot.press(*"penguin")
            await pilot.pause()
            assert [s.id for s in app.screen.summaries] == [old.id]
            await pilot.press("enter")
            await wait_for(pilot, lambda: app.saver.conversation.id == old.id)
            await pilot.pause()
            assert [v.text for v in app.chat.messages()] == ["Tell me about penguins", "Penguins are flightless birds."]
            assert app.generation.temperature == 0.25 and app.system_prompt == "Be terse."

    run(scenario())


def test_help_lists_every_binding(tmp_path):
    async def scenario():
        app = make_app(tmp_path)
        async with app.run_test(size=(120, 50)) as pilot:
            await pilot.press("f1")
            await pilot.pause()
            table = app.screen.query_one("#help-keys")
            keys = [str(table.get_row_at(i)[0]) for i in range(table.row_count)]
            for binding in ChatApp.BINDINGS:
                assert binding.key in keys

    run(scenario())


def test_the_real_smollm2_answers_in_the_app(tmp_path, smollm2_dir):
    async def scenario():
        from tui.engine import Engine

        app = make_app(tmp_path, "do_sample=false", "max_new_tokens=40", engine=Engine())
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_for(pilot, lambda: app.state == "ready", 120)
            await send(pilot, app, "What is the capital of France?")
            await wait_for(pilot, lambda: app.state == "ready" and len(reply_texts(app)) == 1, 120)
            assert "Paris" in reply_texts(app)[0]
            assert app.messages[-1].stats["decode_tok_s"] > 0
            assert "tok/s" in app.status.info.render()

    run(scenario())


def test_think_block_renders_as_a_collapsed_section(tmp_path):
    async def scenario():
        app = make_app(tmp_path, engine=ScriptedEngine(["<think>Two plus two makes four.</think>The answer is 4."]))
        async with app.run_test(size=(100, 30)) as pilot:
            await wait_for(pilot, lambda: app.state == "ready" and app.sidebar is not None)
            await send(pilot, app, "2+2?")
            await wait_for(pilot, lambda: app.state == "ready" and len(reply_texts(app)) == 1)
            await pilot.pause()
            view = app.chat.messages()[-1]
            section = view.query_one(".think")
            assert section.display and section.collapsed
            assert section.query_one(".think-body").source == "Two plus two makes four."
            assert view.body.source == "The answer is 4."

    run(scenario())


def test_up_and_down_recall_earlier_prompts(tmp_path):
    async def scenario():
        app = make_app(tmp_path)
        async with app.run_test() as pilot:
            await send(pilot, app, "/status")
            await send(pilot, app, "/help")
            await pilot.press("up")
            assert app.prompt_input.text == "/help"
            await pilot.press("up")
            assert app.prompt_input.text == "/status"
            await pilot.press("down")
            assert app.prompt_input.text == "/help"
            await pilot.press("down")
            assert app.prompt_input.text == ""
            await pilot.press("a", "shift+enter", "b")
            assert app.prompt_input.text == "a\nb"

    run(scenario())


def test_a_paused_draft_is_prefilled_but_not_a_command_or_mid_reply(tmp_path):
    async def scenario():
        engine = ScriptedEngine(["First answer.", "A long reply " * 200], token_delay=0.005)
        app = make_app(tmp_path, engine=engine)
        async with app.run_test() as pilot:
            await wait_for(pilot, lambda: app.state == "ready")
            await send(pilot, app, "Hello")
            await wait_for(pilot, lambda: app.state == "ready" and reply_texts(app) == ["First answer."])
            app.prompt_input.focus()
            await pilot.press(*"How are")
            await pilot.pause(0.2)
            assert engine.prefills == []  # still typing
            await pilot.press("space", *"you")
            await pilot.pause(1.0)
            assert len(engine.prefills) == 1  # once, after the pause
            assert engine.prefills[0] == [{"role": "user", "content": "Hello"},
                                          {"role": "assistant", "content": "First answer."},
                                          {"role": "user", "content": "How are you"}]
            app.prompt_input.load_text("/hel")
            await pilot.pause(1.0)
            assert len(engine.prefills) == 1  # a slash command is not a message
            await send(pilot, app, "Write a lot")
            await wait_for(pilot, lambda: app.state == "generating")
            app.prompt_input.load_text("next question")
            await pilot.pause(1.0)
            assert app.state == "generating" and len(engine.prefills) == 1  # never during a reply

    run(scenario())


def test_the_status_bar_follows_a_background_compile(tmp_path):
    from concurrent.futures import Future
    from types import SimpleNamespace

    async def scenario():
        engine = ScriptedEngine()
        job = engine.compile = SimpleNamespace(state="compiling", error="", done=Future())
        app = make_app(tmp_path, "--compile", engine=engine)
        async with app.run_test() as pilot:
            await wait_for(pilot, lambda: app.state == "ready" and app.sidebar is not None and app.sidebar.ready)
            assert engine.loads[-1].compile
            assert app.sidebar.query_one("#load-compile").value  # the sidebar shows the option
            assert "compiling" in app.status.info.render()
            job.state = "failed"
            job.error = "torch.compile failed, replies use the usual path: RuntimeError: no compiler"
            job.done.set_result("failed")  # set on the compile thread in the real engine
            await wait_for(pilot, lambda: "compile failed" in app.status.info.render())
            assert any("no compiler" in n.message for n in app._notifications)

    run(scenario())
