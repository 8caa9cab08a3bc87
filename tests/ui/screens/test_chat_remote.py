"""The app on a remote OpenAI-compatible server (a scripted one on 127.0.0.1): replies stream into
the chat, faults keep the partial reply and leave the app usable with retry, and the API key
never reaches the library, exports or logs."""

from __future__ import annotations

import logging

import pytest
from fake_openai import FakeOpenAI
from pilot import make_app, notes, reply_texts, run, send, wait_for

from tui.engine.backends import Backends
from tui.store.files import export_as, export_json, export_markdown

SECRET = "sk-test-0123456789abcdef-never-store-me"


@pytest.fixture
def server():
    with FakeOpenAI() as fake:
        yield fake


def remote_app(tmp_path, server, *args):
    return make_app(
        tmp_path,
        "fake/model-a",
        "--endpoint",
        server.url,
        "do_sample=false",
        "max_new_tokens=20",
        *args,
        engine=Backends(),
    )


def test_faults_keep_the_partial_reply_and_retry_works(tmp_path, server):
    async def scenario():
        app = remote_app(tmp_path, server)
        async with app.run_test(size=(120, 40)) as pilot:
            chat = app.chat_screen
            await wait_for(pilot, lambda: chat.state == "ready", 30)
            assert "remote" in chat.status.info.render()
            await send(pilot, app, "hi")
            await wait_for(pilot, lambda: chat.state == "ready" and len(reply_texts(app)) == 1)
            assert reply_texts(app) == ["Hello there, how can I help?"]

            server.behaviour = "cut"  # the connection closes after three chunks
            await send(pilot, app, "and again?")
            await wait_for(pilot, lambda: chat.state == "ready" and len(reply_texts(app)) == 2)
            assert reply_texts(app)[-1] == "Hello there,"  # what came before the cut is kept
            assert any("ended before the reply did" in note for note in notes(app)), notes(app)

            for status, words in ((500, "the server failed (500)"), (429, "try again in a moment")):
                server.behaviour = status
                count = len(app.notified)
                await chat.action_regenerate()
                await wait_for(pilot, lambda: chat.state == "ready" and len(app.notified) > count)
                assert any(words in note.lower() for note in notes(app)[count:]), notes(app)[count:]
                assert "Traceback" not in " ".join(notes(app))

            server.behaviour = "ok"  # retry: the same question is answered whole
            await chat.action_regenerate()
            await wait_for(
                pilot, lambda: chat.state == "ready" and reply_texts(app)[-1] == "Hello there, how can I help?"
            )
            assert [m.content for m in chat.messages if m.role == "user"] == ["hi", "and again?"]
            assert server.requests[-1]["body"]["messages"][-1]["content"] == "and again?"

    run(scenario())


def test_the_api_key_goes_in_the_header_and_nowhere_else(tmp_path, server, monkeypatch, caplog):
    monkeypatch.setenv("CHATUI_TEST_KEY", SECRET)
    caplog.set_level(logging.DEBUG)

    async def scenario():
        app = remote_app(tmp_path, server, "--api-key-env", "CHATUI_TEST_KEY")
        async with app.run_test(size=(120, 40)) as pilot:
            chat = app.chat_screen
            await wait_for(pilot, lambda: chat.state == "ready", 30)
            await send(pilot, app, "hi")
            await wait_for(pilot, lambda: chat.state == "ready" and len(reply_texts(app)) == 1)
            app.chat_screen.action_save_tf_chat(str(tmp_path / "exports" / "tf.json"))
            await pilot.pause()
            return app.chat_screen.session.conversation

    conversation = run(scenario())
    # The server got it, as a bearer token.
    assert all(r["headers"].get("Authorization") == f"Bearer {SECRET}" for r in server.requests)
    # The conversation records its endpoint, model and the variable's name, not the key.
    assert conversation.model == "fake/model-a"
    assert conversation.load_settings["endpoint"] == server.url
    assert conversation.load_settings["api_key_env"] == "CHATUI_TEST_KEY"
    assert SECRET not in repr(conversation)
    exports = [export_json(conversation), export_markdown(conversation), export_as(conversation, "tf-chat")]
    assert all(SECRET not in text for text in exports)
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert any(p.name == "library.sqlite3" for p in written) and any(p.name == "tf.json" for p in written)
    for path in written:  # the library (and its WAL), the config, the export
        assert SECRET.encode() not in path.read_bytes(), path
    assert any(server.url.encode() in p.read_bytes() for p in written if "library" in p.name)
    assert SECRET not in caplog.text


def test_a_remote_chat_reopened_offers_to_reconnect_to_its_server():
    from tui.engine import LoadSettings
    from tui.engine.settings import describe_load_difference

    saved = LoadSettings(model="fake/model-a", endpoint="http://gpu-box:8000/v1", api_key_env="TEAM_KEY")
    difference = describe_load_difference(saved, LoadSettings())
    assert "endpoint http://gpu-box:8000/v1 (now none)" in difference and "model fake/model-a" in difference
    assert describe_load_difference(saved, saved) == ""
