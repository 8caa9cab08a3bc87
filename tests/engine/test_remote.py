"""The remote backend against a scripted OpenAI-compatible server on 127.0.0.1: streaming, usage,
reasoning, stop, API keys, and every fault a user meets, each one clear line that keeps the
partial reply."""

from __future__ import annotations

import time

import httpx2
import pytest
from fake_openai import FakeOpenAI

from tui.engine import Failed, Finished, GenerationSettings, LoadError, LoadSettings, Started, TokenDelta, remote
from tui.engine.remote import RemoteBackend, api_base, request_body
from tui.engine.remote_keys import KEY_FROM_CONFIG

SETTINGS = GenerationSettings().with_updates({"do_sample": False, "max_new_tokens": 30})
ASK = [{"role": "user", "content": "hi"}]


@pytest.fixture
def server():
    with FakeOpenAI() as fake:
        yield fake


@pytest.fixture
def backend():
    made = RemoteBackend()
    yield made
    made.close()


def connect(backend, server, **settings) -> object:
    return backend.load(LoadSettings(endpoint=server.url, **settings)).result(timeout=30)


def test_a_vllm_servers_lora_adapters_are_models_marked_with_their_base(backend, server):
    """vLLM (--enable-lora --lora-modules sql=/path) lists each adapter as a model whose `parent`
    is the base: picking one is the remote way to switch adapters."""
    server.models = ["meta-llama/Llama-3.1-8B", "sql-lora"]
    server.parents = {"meta-llama/Llama-3.1-8B": None, "sql-lora": "meta-llama/Llama-3.1-8B"}
    info = connect(backend, server, model="sql-lora")
    assert info.available_models == ["meta-llama/Llama-3.1-8B", "sql-lora"]
    assert info.served_adapters == {"sql-lora": "meta-llama/Llama-3.1-8B"}
    list(backend.generate(ASK, SETTINGS))
    assert server.requests[-1]["body"]["model"] == "sql-lora"


def test_the_api_root_is_found_from_what_users_type():
    assert api_base("http://localhost:8000") == api_base("http://localhost:8000/v1/") == "http://localhost:8000/v1"
    with pytest.raises(LoadError, match="http:// or https://"):
        api_base("localhost:8000")


def test_it_lists_the_models_streams_and_reports_usage(backend, server):
    info = connect(backend, server)
    assert info.name == "fake/model-a" and info.available_models == ["fake/model-a", "fake/model-b"]
    assert info.remote and info.device == "remote"
    turn = backend.generate(ASK, SETTINGS)
    events = list(turn)
    assert isinstance(events[0], Started)
    deltas = [e for e in events if isinstance(e, TokenDelta)]
    assert "".join(d.text for d in deltas) == "Hello there, how can I help?" and len(deltas) == 8
    final = turn.final
    assert isinstance(final, Finished) and final.reason == "stop" and final.text == "Hello there, how can I help?"
    assert (final.metrics.prompt_tokens, final.metrics.new_tokens) == (17, 8)  # from the final usage chunk
    body = server.requests[-1]["body"]
    assert body["model"] == "fake/model-a" and body["stream"] and body["max_tokens"] == 30
    assert body["temperature"] == 0.0 and body["stream_options"] == {"include_usage": True}
    assert "generation_config" not in body  # only transformers serve takes it


def test_a_model_the_server_does_not_serve_is_one_clear_line(backend, server):
    with pytest.raises(LoadError, match="does not serve 'nope'; it serves: fake/model-a, fake/model-b"):
        connect(backend, server, model="nope")


def test_settings_map_to_openai_fields():
    settings = GenerationSettings().with_updates(
        {"temperature": 0.3, "top_p": 0.8, "seed": 7, "max_new_tokens": 64, "stop_strings": ["###"]}
    )
    body = request_body("m", ASK, settings, send_generation_config=True)
    assert (body["temperature"], body["top_p"], body["seed"], body["max_tokens"], body["stop"]) == (
        0.3,
        0.8,
        7,
        64,
        ["###"],
    )
    assert '"top_p": 0.8' in body["generation_config"]  # transformers serve gets the whole config


def test_reasoning_deltas_show_as_thinking(backend, server):
    connect(backend, server)
    server.behaviour = "reasoning"
    final = backend.generate(ASK, SETTINGS).wait()
    assert final.text == "<think>Let me think. Yes.</think>Hello there, how can I help?"


def test_stop_closes_the_stream_and_keeps_the_text(backend, server):
    connect(backend, server)
    server.behaviour = "slow"
    turn = backend.generate(ASK, SETTINGS.with_updates({"max_new_tokens": 1000}))
    seen = 0
    for event in turn:
        if isinstance(event, TokenDelta):
            seen += 1
            if seen == 5:
                turn.stop()
    final = turn.final
    assert isinstance(final, Finished) and final.reason == "stopped" and final.text.startswith("Hello there")
    # The server saw the stream close (its next write failed) and stopped long before the end.
    assert server.closed_by_client.wait(10)
    assert server.chunks_sent < len(server.words) * 50 // 2


def test_the_api_key_comes_from_the_variable_named_and_goes_only_in_the_header(backend, server, monkeypatch):
    monkeypatch.setenv("MY_SERVER_KEY", "sk-secret-123")
    connect(backend, server, api_key_env="MY_SERVER_KEY")
    backend.generate(ASK, SETTINGS).wait()
    assert {r["headers"].get("Authorization") for r in server.requests} == {"Bearer sk-secret-123"}
    assert "sk-secret-123" not in repr(backend.load_settings)  # the settings name the variable, not the key
    monkeypatch.delenv("MY_SERVER_KEY")
    monkeypatch.setenv(KEY_FROM_CONFIG, "from-config")
    connect(backend, server)
    assert server.requests[-1]["headers"].get("Authorization") == "Bearer from-config"


@pytest.mark.parametrize(
    "status, message",
    [
        (401, "refused the request (401): check the API key"),
        (403, "refused the request (403): check the API key"),
        (404, "not found (404)"),
        (429, "busy or you sent too much (429): try again"),
        (500, "the server failed (500): scripted 500"),
    ],
)
def test_http_errors_are_one_clear_line(backend, server, status, message):
    connect(backend, server)
    server.behaviour = status
    final = backend.generate(ASK, SETTINGS).wait()
    assert isinstance(final, Failed) and message in final.error and "\n" not in final.error


@pytest.mark.parametrize(
    "behaviour, message",
    [
        ("cut", "ended before the reply did"),
        ("malformed", "malformed event"),
    ],
)
def test_a_broken_stream_keeps_the_partial_reply(backend, server, behaviour, message):
    connect(backend, server)
    server.behaviour = behaviour
    final = backend.generate(ASK, SETTINGS).wait()
    assert isinstance(final, Failed) and message in final.error and final.text == "Hello there,"


def test_a_server_that_stalls_times_out(backend, server, monkeypatch):
    monkeypatch.setattr(remote, "READ_TIMEOUT_S", 0.5)
    connect(backend, server)
    server.behaviour = "stall"
    final = backend.generate(ASK, SETTINGS).wait()
    assert isinstance(final, Failed) and "did not answer in time" in final.error and final.text == "Hello"


def test_connection_refused_and_dns_failure_are_clear(backend):
    with pytest.raises(LoadError, match="connection refused"):
        backend.load(LoadSettings(endpoint="http://127.0.0.1:9/v1")).result(timeout=30)

    def no_such_host(request):
        raise httpx2.ConnectError("[Errno -2] Name or service not known", request=request)

    offline = RemoteBackend(transport=httpx2.MockTransport(no_such_host))  # no lookup leaves the machine
    try:
        with pytest.raises(LoadError, match="DNS lookup failed"):
            offline.load(LoadSettings(endpoint="http://no-such-host.example/v1")).result(timeout=30)
    finally:
        offline.close()


def test_logprobs_come_from_servers_that_return_them(backend, server):
    from tui.engine import TokenProbs

    connect(backend, server)
    turn = backend.generate(ASK, SETTINGS, logprobs=5)
    choices = [c for event in turn if isinstance(event, TokenProbs) for c in event.choices]
    assert server.requests[-1]["body"]["logprobs"] is True and server.requests[-1]["body"]["top_logprobs"] == 5
    assert [c.token for c in choices] == server.words
    assert all(c.id == -1 and c.logprob == -0.25 and [a.token for a in c.top][1] == " else" for c in choices)
    backend.generate(ASK, SETTINGS).wait()
    assert "logprobs" not in server.requests[-1]["body"]  # only when asked


def test_the_config_key_goes_only_to_the_server_it_was_configured_for(monkeypatch):
    from tui.engine.remote_keys import KEY_ENDPOINT, api_key

    monkeypatch.setenv(KEY_FROM_CONFIG, "sk-config")
    monkeypatch.setenv(KEY_ENDPOINT, "http://team-server:8000")
    assert api_key(LoadSettings(endpoint="http://team-server:8000/v1")) == "sk-config"
    assert api_key(LoadSettings(endpoint="http://evil.example:8000")) is None  # named by a chat file
    monkeypatch.setenv("CHATUI_TEST_OTHER", "sk-other")
    assert api_key(LoadSettings(endpoint="http://evil.example", api_key_env="CHATUI_TEST_OTHER")) == "sk-other"


def test_a_saved_chat_never_chooses_which_variable_holds_a_key(tmp_path):
    from tui.core.chat_session import ChatSession
    from tui.store import AutoSaver, Library
    from tui.store.model import Conversation

    session = ChatSession(
        AutoSaver(Library(tmp_path / "library.sqlite3")),
        load_settings=LoadSettings(endpoint="http://mine:8000", api_key_env="MY_KEY"),
    )
    crafted = Conversation(
        "c1", "t", 0.0, 0.0, "m", {"endpoint": "http://evil.example", "api_key_env": "GITHUB_TOKEN"}, {}, None
    )
    load = session.saved_settings(crafted).load
    assert load.endpoint == "http://evil.example" and load.api_key_env is None
    same = Conversation(
        "c2", "t", 0.0, 0.0, "m", {"endpoint": "http://mine:8000", "api_key_env": "GITHUB_TOKEN"}, {}, None
    )
    assert session.saved_settings(same).load.api_key_env == "MY_KEY"


def test_think_tags_the_model_writes_in_its_content_are_left_as_they_are():
    from tui.engine.openai_stream import Reasoning

    plain = Reasoning()
    streamed = "".join(plain.text({"content": piece}) for piece in ["<think>", "Okay so", "</think>", "Answer"])
    assert streamed + plain.close() == "<think>Okay so</think>Answer"
    fields = Reasoning()
    streamed = "".join(
        fields.text(d) for d in [{"reasoning_content": "Hmm."}, {"reasoning_content": " Yes."}, {"content": "Answer"}]
    )
    assert streamed + fields.close() == "<think>Hmm. Yes.</think>Answer"


def test_stop_ends_a_reply_at_once_while_the_server_is_silent(backend, server):
    connect(backend, server)
    server.behaviour = "stall"  # one chunk, then nothing for 5 s
    turn = backend.generate(ASK, SETTINGS)
    for event in turn:
        if isinstance(event, TokenDelta):
            break
    started = time.perf_counter()
    turn.stop()
    final = turn.wait()
    assert time.perf_counter() - started < 2.0  # not the read timeout (120 s), not the stall
    assert isinstance(final, Finished) and final.reason == "stopped" and final.text == "Hello"


def test_tool_calls_stream_as_openai_deltas_and_read_as_a_local_models_calls(backend, server):
    from tui.tools.calls import parse_tool_calls

    connect(backend, server)
    server.behaviour = "tool_call"
    tools = [{"type": "function", "function": {"name": "add", "description": "Add.", "parameters": {}}}]
    final = backend.generate(ASK, SETTINGS, tools=tools).wait()
    assert isinstance(final, Finished)
    assert server.requests[-1]["body"]["tools"] == tools
    content, calls = parse_tool_calls(final.text)
    assert content == "Let me add." and [(c.name, c.arguments) for c in calls] == [("add", {"a": 2, "b": 40})]
    follow_up = ASK + [
        {"role": "assistant", "content": content, "tool_calls": [calls[0].as_message_part()]},
        {"role": "tool", "tool_call_id": calls[0].id, "name": "add", "content": "42"},
    ]
    server.behaviour = "ok"
    backend.generate(follow_up, SETTINGS, tools=tools).wait()
    sent = server.requests[-1]["body"]["messages"]
    assert sent[-2]["tool_calls"][0]["function"]["name"] == "add" and sent[-1]["role"] == "tool"


def test_images_go_as_image_url_data_urls_and_documents_as_text_parts(backend, server):
    import base64

    from images import png

    from tui.store.model import model_content
    from tui.store.parts import FilePart, ImagePart, TextPart

    picture = png()
    connect(backend, server)
    assert backend.capabilities.images
    content = model_content(
        (ImagePart("dot.png", "image/png", picture), FilePart("notes.md", "text/markdown", "buy milk"), TextPart("So?"))
    )
    final = backend.generate([{"role": "user", "content": content}], SETTINGS).wait()
    assert isinstance(final, Finished)
    [sent] = server.requests[-1]["body"]["messages"]
    image, document, text = sent["content"]
    assert image == {
        "type": "image_url",
        "image_url": {"url": "data:image/png;base64," + base64.b64encode(picture).decode()},
    }
    assert document == {"type": "text", "text": '<file name="notes.md">\nbuy milk\n</file>'}
    assert text == {"type": "text", "text": "So?"}
    backend.generate([{"role": "user", "content": "plain"}], SETTINGS).wait()
    assert server.requests[-1]["body"]["messages"] == [{"role": "user", "content": "plain"}]
