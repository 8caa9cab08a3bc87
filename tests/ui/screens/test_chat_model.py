"""Loading the model from the chat screen: progress, failures that keep the previous model,
reloads from the sidebar, the compile status."""

from __future__ import annotations

import sys
from dataclasses import replace

import pytest
from broken_models import write_huge_config, write_pickle_only, write_unsupported_gguf
from fakes import ScriptedEngine
from pilot import booted, make_app, notes, reply_texts, run, send, wait_for
from textual.widgets import Select
from textual.widgets._select import SelectOverlay

from tui.engine import Engine, LoadSettings
from tui.ui.widgets.settings_panel import SettingsPanel


def test_failed_loads_in_the_app_keep_the_previous_model(tmp_path, tiny_model_dir, monkeypatch):
    gguf_file = write_unsupported_gguf(tmp_path / "weird.gguf")
    huge = write_huge_config(tmp_path / "huge", tiny_model_dir)
    pickled = write_pickle_only(tmp_path / "pickled", tiny_model_dir)
    attempts = [
        (LoadSettings(model=str(gguf_file)), "mamba3000"),
        (LoadSettings(model=str(huge)), "out of memory"),
        (LoadSettings(model=str(tiny_model_dir), quantization="4bit"), "bitsandbytes"),
        (LoadSettings(model=str(pickled)), "--allow-pickle"),
    ]

    async def scenario():
        async with booted(
            tmp_path,
            str(tiny_model_dir),
            "do_sample=false",
            "max_new_tokens=5",
            engine=Engine(),
            size=(120, 50),
            timeout=120,
        ) as (pilot, app):
            failures = []
            for settings, expected in attempts:
                if settings.quantization != "none":
                    monkeypatch.setitem(sys.modules, "bitsandbytes", None)
                count = len(app.notified)
                app.chat_screen.loader.reload(settings)
                await wait_for(pilot, lambda: app.chat_screen.state != "loading", 120)
                monkeypatch.delitem(sys.modules, "bitsandbytes", raising=False)
                errors = [n for n in app.notified[count:] if n.title == "Model load failed"]
                assert len(errors) == 1, (settings, notes(app))
                message = errors[0].message
                assert "\n" not in message and "Traceback" not in message
                assert app.chat_screen.state == "ready" and app.chat_screen.engine.info is not None
                assert app.chat_screen.engine.info.source == str(tiny_model_dir)  # the previous model is back
                if expected not in message:
                    failures.append(f"{settings.model} {settings.quantization}: {message}")
            await send(pilot, app, "still working?")
            await wait_for(pilot, lambda: app.chat_screen.state == "ready" and len(reply_texts(app)) == 1, 60)
            assert app.chat_screen.messages[-1].status == "length"
            assert not failures, failures

    run(scenario())


def test_load_failure_is_shown_and_the_app_keeps_running(tmp_path):
    async def scenario():
        engine = ScriptedEngine(load_error="model path not found: /nope")
        app = make_app(tmp_path, "/nope", engine=engine)
        async with app.run_test() as pilot:
            await wait_for(pilot, lambda: app.chat_screen.state == "error")
            assert "error" in app.chat_screen.status.info.render()
            assert any("model path not found" in n.message for n in app.notified)
            await send(pilot, app, "still here?")
            await pilot.pause()
            assert app.chat_screen.replies.pending_send and engine.calls == []
            app.chat_screen.loader.reload(app.chat_screen.loader.load_settings.replace(model="good"))
            await wait_for(pilot, lambda: app.chat_screen.state == "ready" and len(reply_texts(app)) == 1)

    run(scenario())


def test_apply_with_a_bad_path_keeps_the_old_model(tmp_path, tiny_model_dir):
    from tui.engine import Engine

    async def scenario():
        async with booted(
            tmp_path, str(tiny_model_dir), "max_new_tokens=5", engine=Engine(), size=(120, 50), timeout=120
        ) as (pilot, app):
            app.query_one("#load-model").value = "/no/such/model"
            app.query_one(SettingsPanel).apply_load()
            await wait_for(
                pilot, lambda: app.chat_screen.state != "loading" and app.chat_screen.engine.info is not None, 120
            )
            await pilot.pause()
            assert app.chat_screen.engine.info.source == str(tiny_model_dir)
            assert any("model path not found: /no/such/model" in n.message for n in app.notified)
            await send(pilot, app, "hi")
            await wait_for(pilot, lambda: app.chat_screen.state == "ready" and len(reply_texts(app)) == 1, 60)

    run(scenario())


@pytest.mark.parametrize("width", [120, 200])
def test_unavailable_options_are_marked_with_a_readable_reason_and_refused(tmp_path, width):
    async def scenario():
        async with booted(tmp_path, size=(width, 50)) as (pilot, app):
            sidebar = app.chat_screen.settings_panel
            for name in ("dtype", "device", "quantization", "attn_implementation"):
                select = app.query_one(f"#load-{name}")  # the whole dropdown, border and arrow, in the row
                assert select.region.right <= sidebar.region.right - 1 and select.region.width >= 20, name
            select = app.query_one("#load-device")
            labels = [str(label) for label, _ in select._options]
            assert "✗ cuda" in labels
            reasons = str(app.query_one("#load-unavailable").render())
            assert "✗ cuda: no CUDA GPU" in reasons and "✗ mps: no Apple GPU" in reasons
            select.value = "cuda"
            await pilot.pause()
            app.query_one("#apply").press()
            await pilot.pause()
            assert "cannot work here: no CUDA GPU" in str(app.query_one("#load-error").render())
            assert len(app.engine.loads) == 1  # no reload was tried

            # a long option with its mark stays on one line in the dropdown, the mark first
            info = replace(sidebar.model_info, unavailable={"attn_implementation:flash_attention_2": "needs CUDA"})
            sidebar.show_model(info, sidebar.load_settings)
            attention = app.query_one("#load-attn_implementation", Select)
            attention.scroll_visible(animate=False)
            await pilot.pause()
            attention.focus()
            await pilot.press("enter")
            overlay = attention.query_one(SelectOverlay)
            await wait_for(pilot, lambda: overlay.display and overlay.option_count == 4)
            await pilot.pause()
            assert str(overlay.get_option_at_index(3).prompt) == "✗ flash_attention_2"
            assert overlay.virtual_size.height == 4  # one line each: nothing wrapped
            await pilot.press("escape")
            attention.value = "flash_attention_2"  # chosen, the closed dropdown keeps one line too
            await pilot.pause()
            assert attention.query_one("SelectCurrent #label").size.height == 1

    run(scenario())


def test_the_status_bar_follows_a_background_compile(tmp_path):
    from concurrent.futures import Future
    from types import SimpleNamespace

    async def scenario():
        engine = ScriptedEngine()
        job = engine.compile = SimpleNamespace(state="compiling", error="", done=Future())
        async with booted(tmp_path, "--compile", engine=engine) as (pilot, app):
            assert engine.loads[-1].compile
            assert app.chat_screen.settings_panel.query_one("#load-compile").value  # the sidebar shows the option
            assert "compiling" in app.chat_screen.status.info.render()
            job.state = "failed"
            job.error = "torch.compile failed, replies use the usual path: RuntimeError: no compiler"
            job.done.set_result("failed")  # set on the compile thread in the real engine
            await wait_for(pilot, lambda: "compile failed" in app.chat_screen.status.info.render())
            assert any("no compiler" in n.message for n in app.notified)

    run(scenario())


class RooflineEngine(ScriptedEngine):
    """A scripted model that says how many bytes a token reads (540 MB, as the real SmolLM2 in fp32)."""

    def load(self, settings, progress=None):
        from concurrent.futures import Future
        from dataclasses import replace

        from fakes import FIXED_INFO

        self.loads.append(settings)
        self.info, self.load_settings = replace(FIXED_INFO, bytes_per_token=540 * 2**20), settings
        future: Future = Future()
        future.set_result(self.info)
        return future


def test_the_status_bar_shows_decode_speed_as_a_share_of_the_bandwidth_limit(tmp_path, monkeypatch):
    import time

    from tui.engine.estimates import roofline_tok_s
    from tui.engine.machine import Bandwidth
    from tui.ui.screens import chat_model

    # A known bandwidth (the measured one depends on the machine and its load): 540 MiB a token
    # at 56.6 GB/s is a limit of 100 tok/s, so the scripted 20 tok/s is 20 %.
    bandwidth = Bandwidth(100 * 540 * 2**20, "cpu", time.time())
    monkeypatch.setattr(chat_model, "cached_bandwidth", lambda device: bandwidth)
    limit = roofline_tok_s(540 * 2**20, bandwidth.bytes_per_s)

    async def scenario():
        async with booted(tmp_path, engine=RooflineEngine(["one two three four five six"])) as (pilot, app):
            status = app.chat_screen.status
            await wait_for(pilot, lambda: status.info.tok_s_limit is not None)
            assert status.info.tok_s_limit == pytest.approx(limit)
            await send(pilot, app, "Hi")
            await wait_for(pilot, lambda: status.info.tok_s is not None)
            share = 100 * status.info.tok_s / limit
            assert f"{status.info.tok_s:.1f} tok/s · {share:.0f} % of bandwidth limit" in status.info.render()
            status.info.tok_s = 150.0  # faster than the limit: the figure was measured under load
            assert "150.0 tok/s · 100 % of bandwidth limit" in status.info.render()

    run(scenario())
