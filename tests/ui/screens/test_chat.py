"""The chat screen driven with Pilot: on a scripted engine (fast, deterministic), on the tiny real
model, and once on the real SmolLM2. Sending, streaming, stopping, slash commands, what a reply
looks like."""

from __future__ import annotations

import pytest
from fakes import ScriptedEngine
from pilot import booted, make_app, message_views, notes, reply_texts, run, send, wait_for

from tui.engine import Engine
from tui.store import Library
from tui.store.config import Config
from tui.store.meta import MessageMeta, ReplyMetrics
from tui.ui.screens.help import HelpScreen


def test_send_shows_the_reply_its_stats_and_saves_it(tmp_path):
    async def scenario():
        async with booted(tmp_path, engine=ScriptedEngine(["Paris is the **capital**."]), size=(120, 40)) as (
            pilot,
            app,
        ):
            await send(pilot, app, "What is the capital of France?")
            await wait_for(pilot, lambda: app.chat_screen.state == "ready" and len(reply_texts(app)) == 1)
            await pilot.pause()
            assert reply_texts(app) == ["Paris is the **capital**."]
            views = message_views(app.chat_screen)
            assert [v.role for v in views] == ["user", "assistant"]
            assert (
                "20.0 tok/s" in app.chat_screen.status.info.render()
                and "TTFT 0.25 s" in app.chat_screen.status.info.render()
            )
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
            assert app.chat_screen.state == "loading" and engine.calls == [] and app.chat_screen.replies.pending_send
            engine.hold_load = False
            app.chat_screen.loader.load(app.chat_screen.loader.load_settings)
            await wait_for(pilot, lambda: app.chat_screen.state == "ready" and len(reply_texts(app)) == 1)
            assert engine.calls[0][0][-1] == {"role": "user", "content": "early bird"}

    run(scenario())


def test_stop_keeps_the_partial_reply_marked_stopped(tmp_path):
    async def scenario():
        long_reply = " ".join(f"w{i}" for i in range(400))
        async with booted(tmp_path, engine=ScriptedEngine([long_reply], token_delay=0.01)) as (pilot, app):
            await send(pilot, app, "talk")
            await wait_for(pilot, lambda: app.chat_screen.replies.live_tokens >= 5)
            await pilot.press("escape")
            await wait_for(pilot, lambda: app.chat_screen.state == "ready" and app.chat_screen.settings_panel.ready)
            reply = app.chat_screen.messages[-1]
            assert reply.status == "stopped" and reply.content.startswith("w0 w1 w2")
            assert len(reply.content.split()) < 400
            assert "stopped" in str(message_views(app.chat_screen)[-1].query_one(".message-header").render())

    run(scenario())


def test_a_streaming_reply_raises_no_warning_by_itself(tmp_path):
    """The footer asks at each refresh what Esc does now; asking must not warn "Wait for the
    reply" as a key that cannot act does (it popped up twice per reply, with no key pressed)."""

    async def scenario():
        long_reply = " ".join(f"w{i}" for i in range(200))
        async with booted(tmp_path, engine=ScriptedEngine([long_reply], token_delay=0.005)) as (pilot, app):
            warnings: list[str] = []
            notify = app.notify

            def recording(message, *args, **kwargs):
                warnings.append(str(message))
                return notify(message, *args, **kwargs)

            app.notify = recording  # type: ignore[method-assign]
            await send(pilot, app, "talk")
            await wait_for(pilot, lambda: app.chat_screen.state == "ready" and len(reply_texts(app)) == 1)
            await pilot.pause()
            assert [w for w in warnings if "Wait for the reply" in w] == []
            footer = [key.description for key in app.chat_screen.query("FooterKey")]
            assert "Stop" in footer

    run(scenario())


@pytest.mark.parametrize("how", ["ctrl+q", "ctrl+n", "/clear", "/new", "open another chat"])
def test_leaving_a_reply_saves_what_it_wrote_as_stopped(tmp_path, how):
    """Quitting, a new chat or opening another one mid-reply stops the reply and keeps its text."""
    library_path = tmp_path / "library.sqlite3"
    with Library(library_path) as library:
        other = library.create(title="Another chat")
        library.add_message(other.id, "user", "an older question")

    async def scenario() -> str:
        long_reply = " ".join(f"w{i}" for i in range(2000))
        async with booted(tmp_path, engine=ScriptedEngine([long_reply], token_delay=0.005)) as (pilot, app):
            chat = app.chat_screen
            await send(pilot, app, "talk")
            await wait_for(pilot, lambda: chat.replies.live_tokens >= 20)
            conv_id = chat.session.conversation.id
            if how == "open another chat":
                await pilot.press("ctrl+o")
                await wait_for(pilot, lambda: app.screen is not chat)
                await pilot.press(*"older", "enter")
                await wait_for(pilot, lambda: chat.session.conversation.id == other.id)
            elif how.startswith("/"):
                await send(pilot, app, how)
                await wait_for(pilot, lambda: chat.messages == [])
            else:
                await pilot.press(how)
                if how == "ctrl+n":
                    await wait_for(pilot, lambda: chat.messages == [])
                    assert chat.state == "ready"
        return conv_id

    conv_id = run(scenario())
    with Library(library_path) as library:
        messages = library.get(conv_id).messages
    assert [m.role for m in messages] == ["user", "assistant"]
    reply = messages[1]
    assert reply.status == "stopped" and reply.content.startswith("w0 w1 w2 w3")
    assert len(reply.content.split()) >= 20


def test_an_interrupted_reply_reopens_as_interrupted_and_continues(tmp_path):
    """A reply cut off by a crash (saved as it streamed) shows as interrupted, and ctrl+t goes on."""
    library_path = tmp_path / "library.sqlite3"
    with Library(library_path) as library:
        conv = library.create(title="Crashed", generation_settings={"max_new_tokens": 300, "temperature": 0.3})
        user = library.add_message(conv.id, "user", "tell me")
        library.add_message(conv.id, "assistant", "Once upon", user.id, status="interrupted")

    async def scenario():
        engine = ScriptedEngine([" a time, the end."])
        app = make_app(tmp_path, "--conversation", conv.id, "max_new_tokens=7", engine=engine)
        async with app.run_test() as pilot:
            chat = app.chat_screen
            await wait_for(pilot, lambda: chat.state == "ready" and len(chat.messages) == 2)
            await pilot.pause()
            generation = chat.session.generation  # the chat's own settings, but a flag given with it wins
            assert (generation.max_new_tokens, generation.temperature) == (7, 0.3)
            header = str(message_views(chat)[-1].query_one(".message-header").render())
            assert "interrupted" in header and "ctrl+t" in header
            await pilot.press("ctrl+t")
            await wait_for(pilot, lambda: chat.state == "ready" and chat.messages[-1].status == "ok")
            assert chat.messages[-1].content == "Once upon a time, the end."
            assert engine.calls[-1][0][-1] == {"role": "assistant", "content": "Once upon"}

    run(scenario())


def test_slash_commands(tmp_path):
    async def scenario():
        async with booted(tmp_path) as (pilot, app):
            await send(pilot, app, "/set temperature=0.3 max_new_tokens=64")
            await pilot.pause()
            assert (
                app.chat_screen.session.generation.temperature == 0.3
                and app.chat_screen.session.generation.max_new_tokens == 64
            )
            await send(pilot, app, "/set temperature=-1")
            await pilot.pause()
            assert app.chat_screen.session.generation.temperature == 0.3
            assert any("temperature" in n.message and "out of range" in n.message for n in app.notified)
            await send(pilot, app, "/set max_new_tokens=999999")
            await pilot.pause()
            assert app.chat_screen.session.generation.max_new_tokens == 64  # beyond the 4096-token context
            await send(pilot, app, "/system Answer in French.")
            await pilot.pause()
            assert app.chat_screen.session.system_prompt == "Answer in French."
            await send(pilot, app, "/status")
            await pilot.pause()
            note = message_views(app.chat_screen)[-1]
            assert "temperature=0.3" in note.text and "scripted-model" in note.text
            await send(pilot, app, "/bogus")
            await pilot.pause()
            assert any("unknown command /bogus" in n.message for n in app.notified)
            await send(pilot, app, "/help")
            await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen))
            assert "/set key=value" in app.screen.query_one("#help-commands").source
            await pilot.press("escape")
            await wait_for(pilot, lambda: app.screen is app.chat_screen)
            await send(pilot, app, "hello")
            await wait_for(pilot, lambda: app.chat_screen.state == "ready" and len(reply_texts(app)) == 1)
            sent_messages, sent_settings = app.engine.calls[-1]
            assert sent_messages[0] == {"role": "system", "content": "Answer in French."}
            assert sent_settings.temperature == 0.3
            await send(pilot, app, "/clear")
            await pilot.pause()
            assert app.chat_screen.messages == [] and message_views(app.chat_screen) == []

    run(scenario())


def test_typing_scrolling_and_palette_work_while_streaming(tmp_path):
    async def scenario():
        reply = "\n\n".join(f"Paragraph {i} with some words." for i in range(300))
        async with booted(tmp_path, engine=ScriptedEngine([reply], token_delay=0.002), size=(100, 30)) as (pilot, app):
            await send(pilot, app, "write a lot")
            await wait_for(pilot, lambda: app.chat_screen.replies.live_tokens >= 20)
            await pilot.press("h", "i")
            assert app.chat_screen.prompt_input.text == "hi" and app.chat_screen.state == "generating"
            app.chat_screen.chat.scroll_home(animate=False)
            await pilot.pause()
            assert app.chat_screen.chat.scroll_y == 0 and app.chat_screen.state == "generating"
            await pilot.press("ctrl+p")
            await pilot.pause()
            assert app.screen.__class__.__name__ == "CommandPalette"
            await pilot.press("escape")
            await pilot.press("escape")
            await wait_for(pilot, lambda: app.chat_screen.state == "ready" and app.chat_screen.settings_panel.ready)
            assert app.chat_screen.messages[-1].status in ("stopped", "ok")

    run(scenario())


def test_generation_failure_keeps_partial_text_and_the_next_turn_works(tmp_path):
    async def scenario():
        engine = ScriptedEngine(["one two three four five", "fine again"], fail_after=3)
        async with booted(tmp_path, engine=engine) as (pilot, app):
            await send(pilot, app, "hi")
            await wait_for(pilot, lambda: app.chat_screen.state == "ready" and len(app.chat_screen.messages) == 2)
            failed = app.chat_screen.messages[-1]
            assert failed.status == "failed" and failed.content == "one two three "
            assert any("simulated" in n.message for n in app.notified)
            engine.fail_after = None
            await send(pilot, app, "again")
            await wait_for(pilot, lambda: app.chat_screen.state == "ready" and len(app.chat_screen.messages) == 4)
            assert app.chat_screen.messages[-1].content == "fine again"
            assert {"role": "assistant", "content": "one two three "} not in engine.calls[-1][0]

    run(scenario())


def test_generation_failure_mid_stream_on_the_tiny_model(tmp_path, tiny_model_dir, monkeypatch):
    from transformers import LlamaForCausalLM

    original = LlamaForCausalLM.forward
    state = {"calls": 0, "armed": False}

    def flaky(self, *args, **kwargs):
        if state["armed"]:
            state["calls"] += 1
            if state["calls"] > 12:
                raise RuntimeError("simulated accelerator fault")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(LlamaForCausalLM, "forward", flaky)
    engine = Engine()
    sent: list[list[dict]] = []
    real_generate = engine.generate

    def recording_generate(messages, settings, logprobs=0, tools=None):
        sent.append([dict(m) for m in messages])
        return real_generate(messages, settings, logprobs, tools)

    engine.generate = recording_generate

    async def scenario():
        async with booted(
            tmp_path, str(tiny_model_dir), "do_sample=false", "max_new_tokens=40", engine=engine, timeout=120
        ) as (pilot, app):
            state["armed"] = True
            await send(pilot, app, "please fail")
            await wait_for(pilot, lambda: app.chat_screen.state == "ready" and len(app.chat_screen.messages) == 2, 60)
            state["armed"] = False
            failed = app.chat_screen.messages[-1]
            assert failed.role == "assistant" and failed.status == "failed"
            assert failed.content  # the partial reply is kept
            assert any("simulated accelerator fault" in m for m in notes(app))
            views = message_views(app.chat_screen)
            assert views[1].text == failed.content and "failed" in str(views[1].query_one(".message-header").render())
            assert views[-1].role == "error" and "simulated accelerator fault" in views[-1].text
            await send(pilot, app, "now work")
            await wait_for(pilot, lambda: app.chat_screen.state == "ready" and len(app.chat_screen.messages) == 4, 60)
            assert app.chat_screen.messages[-1].status == "length" and app.chat_screen.messages[-1].content
            assert all(m["content"] != failed.content for m in sent[-1] if m["role"] == "assistant")
            conv_id = app.saver.conversation.id
        stored = Library(tmp_path / "library.sqlite3").get(conv_id)
        assert [m.status for m in stored.messages] == ["ok", "failed", "ok", "length"]

    run(scenario())


def test_control_sequences_in_output_render_as_inert_text(tmp_path):
    hostile = (
        "clear\x1b[2J now \x1b]52;c;ZXZpbA==\x07 link \x1b]8;;http://x\x1b\\y\x1b]8;;\x1b\\ bell\x07 back\x08 cr\r end"
    )

    async def scenario():
        async with booted(tmp_path, engine=ScriptedEngine([hostile])) as (pilot, app):
            await send(pilot, app, "hi")
            await wait_for(pilot, lambda: app.chat_screen.state == "ready" and len(reply_texts(app)) == 1)
            await pilot.pause()
            body = message_views(app.chat_screen)[-1].body
            shown = body.source
            assert "\x1b" not in shown and "\x07" not in shown and "\x08" not in shown and "\r" not in shown
            assert "␛[2J" in shown and "␇" in shown
            assert reply_texts(app) == [hostile]  # the stored text is the model's own
            assert body._open_links is False

    run(scenario())


def test_the_real_smollm2_answers_in_the_app(tmp_path, smollm2_dir):
    async def scenario():
        from tui.engine import Engine

        async with booted(
            tmp_path, "do_sample=false", "max_new_tokens=40", engine=Engine(), size=(120, 40), timeout=120
        ) as (pilot, app):
            await send(pilot, app, "What is the capital of France?")
            await wait_for(pilot, lambda: app.chat_screen.state == "ready" and len(reply_texts(app)) == 1, 120)
            assert "Paris" in reply_texts(app)[0]
            assert app.chat_screen.messages[-1].meta.metrics.decode_tok_s > 0
            assert "tok/s" in app.chat_screen.status.info.render()

    run(scenario())


def test_think_block_renders_as_a_collapsed_section(tmp_path):
    async def scenario():
        async with booted(
            tmp_path, engine=ScriptedEngine(["<think>Two plus two makes four.</think>The answer is 4."]), size=(100, 30)
        ) as (pilot, app):
            await send(pilot, app, "2+2?")
            await wait_for(pilot, lambda: app.chat_screen.state == "ready" and len(reply_texts(app)) == 1)
            await pilot.pause()
            view = message_views(app.chat_screen)[-1]
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
            await send(pilot, app, "/system terse")
            await pilot.press("up")
            assert app.chat_screen.prompt_input.text == "/system terse"
            await pilot.press("up")
            assert app.chat_screen.prompt_input.text == "/status"
            await pilot.press("down")
            assert app.chat_screen.prompt_input.text == "/system terse"
            await pilot.press("down")
            assert app.chat_screen.prompt_input.text == ""
            await pilot.press("a", "shift+enter", "b")
            assert app.chat_screen.prompt_input.text == "a\nb"
            await pilot.press("up")  # a draft: the cursor moves, nothing is recalled
            assert app.chat_screen.prompt_input.text == "a\nb" and app.chat_screen.prompt_input.cursor_location[0] == 0

    run(scenario())


def test_the_prompt_takes_the_users_keys(tmp_path):
    async def scenario():
        config = Config(path=tmp_path / "config.toml", keys={"prompt.send": "f9", "prompt.new_line": "enter"})
        app = make_app(tmp_path, config=config)
        async with app.run_test() as pilot:
            prompt = app.chat_screen.prompt_input
            assert str(prompt.placeholder).startswith("Message (f9 sends · enter newline")
            prompt.focus()
            await pilot.press("a", "enter", "b")
            assert prompt.text == "a\nb"
            await pilot.press("f9")
            await wait_for(pilot, lambda: prompt.text == "" and reply_texts(app))

    run(scenario())


def test_a_paused_draft_is_prefilled_but_not_a_command_or_mid_reply(tmp_path):
    async def scenario():
        engine = ScriptedEngine(["First answer.", "A long reply " * 200], token_delay=0.005)
        async with booted(tmp_path, engine=engine) as (pilot, app):
            await send(pilot, app, "Hello")
            await wait_for(pilot, lambda: app.chat_screen.state == "ready" and reply_texts(app) == ["First answer."])
            app.chat_screen.prompt_input.focus()
            await pilot.press(*"How are")
            await pilot.pause(0.2)
            assert engine.prefills == []  # still typing
            await pilot.press("space", *"you")
            await pilot.pause(1.0)
            assert len(engine.prefills) == 1  # once, after the pause
            assert engine.prefills[0] == [
                {"role": "user", "content": "Hello"},
                {"role": "assistant", "content": "First answer."},
                {"role": "user", "content": "How are you"},
            ]
            app.chat_screen.prompt_input.load_text("/hel")
            await pilot.pause(1.0)
            assert len(engine.prefills) == 1  # a slash command is not a message
            await send(pilot, app, "Write a lot")
            await wait_for(pilot, lambda: app.chat_screen.state == "generating")
            app.chat_screen.prompt_input.load_text("next question")
            await pilot.pause(1.0)
            assert app.chat_screen.state == "generating" and len(engine.prefills) == 1  # never during a reply

    run(scenario())


def test_single_line_breaks_show_as_written(tmp_path):
    """ "Red: Red\nBlue: Blue" is three lines on screen (Markdown would join them into one), in
    replies and in the user's own ctrl+j lines; lists, code blocks and tables render as before."""
    reply = (
        "Here are three colors:\n\nRed: Red\nBlue: Blue\nGreen: Green\n\n- one\n- two\n\n```\na\nb\n```"
        "\n\n| colour | hex |\n|---|---|\n| red | #f00 |\n| blue | #00f |"
    )

    async def scenario():
        async with booted(tmp_path, engine=ScriptedEngine([reply]), size=(100, 40)) as (pilot, app):
            chat = app.chat_screen
            chat.prompt_input.focus()
            await pilot.press(*"Roses", "ctrl+j", *"Violets")
            await pilot.press("enter")
            await wait_for(pilot, lambda: chat.state == "ready" and reply_texts(app) == [reply])
            await pilot.pause(0.2)
            user_view, reply_view = message_views(chat)
            [poem] = user_view.query("MarkdownParagraph")
            assert poem.size.height == 2
            paragraphs = list(reply_view.query("MarkdownParagraph"))
            colours = next(p for p in paragraphs if p.size.height > 1)
            assert colours.size.height == 3
            assert len(reply_view.query("MarkdownBullet")) == 2 and len(reply_view.query("MarkdownFence")) == 1
            [table] = reply_view.query("MarkdownTable")  # one table: no hard break was put into its rows
            assert table.size.height >= 3  # the header and both rows

    run(scenario())


def test_the_status_bar_shows_the_open_chats_figures_live(tmp_path):
    """Context counts the prompt and the tokens so far while a reply streams; after a delete it
    is the conversation's size; TTFT and tok/s belong to the open chat, never another one."""
    with Library(tmp_path / "library.sqlite3") as library:
        other = library.create(title="Other")
        user = library.add_message(other.id, "user", "old question")
        library.add_message(
            other.id,
            "assistant",
            "old answer",
            user.id,
            meta=MessageMeta(ReplyMetrics(prompt_tokens=30, new_tokens=12, ttft_s=0.9, decode_tok_s=7.5)),
        )

    async def scenario():
        reply = " ".join(f"w{i}" for i in range(300))
        async with booted(tmp_path, engine=ScriptedEngine([reply, ""], token_delay=0.01)) as (pilot, app):
            chat, info = app.chat_screen, app.chat_screen.status.info
            await send(pilot, app, "first turn")
            await wait_for(pilot, lambda: chat.replies.live_tokens >= 30 and info.context_used >= 42 + 20)
            assert chat.state == "generating" and info.ttft_s is None  # no figure from before
            await wait_for(pilot, lambda: chat.state == "ready")
            assert info.context_used == 42 + 300 and info.ttft_s == 0.25
            # Continue on a finished reply that the model has nothing to add to: it says so.
            await pilot.press("ctrl+t")
            await wait_for(
                pilot, lambda: chat.state == "ready" and "The model had nothing to add to this reply." in notes(app)
            )
            assert chat.messages[-1].status == "ok" and chat.messages[-1].meta.metrics.new_tokens == 300
            chat.session.delete_message(chat.messages[-1])
            await chat.transcript.render()
            await wait_for(pilot, lambda: info.context_used == 2 + 4)  # the fake engine's count of "first turn"
            await chat.files.open_conversation(other.id)
            await pilot.pause()
            assert (info.ttft_s, info.tok_s, info.context_used) == (0.9, 7.5, 42)
            await pilot.press("ctrl+n")
            await pilot.pause()
            assert (info.ttft_s, info.tok_s, info.context_used) == (None, None, 0)

    run(scenario())


def test_the_sidebar_steps_aside_when_the_chat_would_be_too_narrow(tmp_path):
    async def scenario():
        async with booted(tmp_path, size=(60, 20)) as (pilot, app):
            chat = app.chat_screen
            panel = chat.settings_panel
            assert not panel.display and chat.chat.size.width >= 55  # at 60 columns the chat has them
            await pilot.resize_terminal(120, 40)
            await pilot.pause()
            assert panel.display  # room again: it comes back
            await pilot.press("ctrl+b")  # hidden by the user...
            await pilot.resize_terminal(60, 20)
            await pilot.resize_terminal(130, 40)
            await pilot.pause()
            assert not panel.display  # ...stays hidden
            await pilot.resize_terminal(60, 20)
            await pilot.press("ctrl+b")  # asked for at 60 columns: shown all the same
            await pilot.pause()
            assert panel.display

    run(scenario())


def test_context_is_counted_live_while_an_edited_message_is_answered(tmp_path):
    async def scenario():
        reply = " ".join(f"w{i}" for i in range(300))
        async with booted(tmp_path, engine=ScriptedEngine(["short answer", reply], token_delay=0.01)) as (pilot, app):
            chat, info = app.chat_screen, app.chat_screen.status.info
            await send(pilot, app, "first question")
            await wait_for(pilot, lambda: chat.state == "ready" and reply_texts(app) == ["short answer"])
            await pilot.press("ctrl+g")  # edit the last message: its answer is written again
            await wait_for(pilot, lambda: chat.prompt_input.text == "first question")
            chat.prompt_input.load_text("an edited question")
            await pilot.press("enter")
            await wait_for(pilot, lambda: chat.state == "generating" and info.context_used >= 42 + 30)
            assert info.ttft_s is None  # live figures of this reply, not 0 or the old turn's
            await wait_for(pilot, lambda: chat.state == "ready")
            assert info.context_used == 42 + 300

    run(scenario())
