"""The remote backend against a real `transformers serve` (the tiny model, on 127.0.0.1): the
model list, streaming, stop, and settings honoured: its greedy reply is the in-process one."""

from __future__ import annotations

import pytest

from tui.engine import Finished, GenerationSettings, LoadSettings, TokenDelta
from tui.engine.remote import RemoteBackend

ASK = [{"role": "user", "content": "Tell me about the sea."}]


@pytest.fixture(scope="module")
def served(transformers_serve):
    backend = RemoteBackend()
    info = backend.load(LoadSettings(endpoint=transformers_serve)).result(timeout=60)
    yield backend, info
    backend.close()


def test_the_model_list_names_the_served_model(served, tiny_model_dir):
    backend, info = served
    assert str(tiny_model_dir) in info.available_models and info.name == str(tiny_model_dir)


def test_a_greedy_reply_streams_and_equals_the_in_process_one(served, tiny_engine):
    backend, _ = served
    settings = GenerationSettings().with_updates({"do_sample": False, "max_new_tokens": 24, "min_new_tokens": 24})
    turn = backend.generate(ASK, settings)
    deltas = [e for e in turn if isinstance(e, TokenDelta)]
    remote_final = turn.final
    assert isinstance(remote_final, Finished) and len(deltas) > 1  # streamed, not one piece
    tiny_engine.turn_cache.drop()
    local = tiny_engine.generate(ASK, settings).wait()
    assert remote_final.text == local.text and local.metrics.new_tokens == 24
    assert remote_final.metrics.new_tokens == 24  # the server's usage


def test_stop_ends_the_reply_and_the_server_goes_on_answering(served):
    backend, _ = served
    long = GenerationSettings().with_updates({"do_sample": False, "max_new_tokens": 400, "min_new_tokens": 400})
    turn = backend.generate(ASK, long)
    for index, event in enumerate(turn):
        if isinstance(event, TokenDelta) and index == 5:
            turn.stop()
    assert isinstance(turn.final, Finished) and turn.final.reason == "stopped"
    short = GenerationSettings().with_updates({"do_sample": False, "max_new_tokens": 4})
    after = backend.generate(ASK, short).wait()
    assert isinstance(after, Finished) and after.reason == "length"


def test_an_image_sent_to_transformers_serve_gets_the_in_process_reply(transformers_serve_vlm, tiny_vlm_engine):
    from images import image_message, png

    backend = RemoteBackend()
    try:
        backend.load(LoadSettings(endpoint=transformers_serve_vlm)).result(timeout=60)
        settings = GenerationSettings().with_updates({"do_sample": False, "max_new_tokens": 12, "min_new_tokens": 12})
        messages = [image_message(png((20, 20, 220)), "What is in this picture?")]
        remote_final = backend.generate(messages, settings).wait()
        assert isinstance(remote_final, Finished), remote_final
        tiny_vlm_engine.turn_cache.drop()
        local = tiny_vlm_engine.generate(messages, settings).wait()
        assert remote_final.text == local.text
    finally:
        backend.close()
