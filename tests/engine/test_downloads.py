"""Downloads through huggingface_hub's own code against a local Hub on 127.0.0.1 (tests/hub_server.py):
progress, cancel and resume, a dropped connection, 404, a full disk, a gated repo and its token."""

from __future__ import annotations

import errno
import threading
import time
from pathlib import Path

import pytest
from hub_server import TOKEN, HubServer
from huggingface_hub import constants, file_download

from tui.engine import downloads
from tui.engine.downloads import DownloadCancelled, DownloadError, TokenRequired, download, plan_download


@pytest.fixture
def hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tiny_model_dir: Path):
    """The local Hub serving the tiny model as org/tiny (and gated as org/gated), online, with an
    empty cache in tmp_path; the library reads 64 KiB at a time so progress moves often."""
    with HubServer() as server:
        server.state.add_folder("org/tiny", tiny_model_dir)
        server.state.add_folder("org/gated", tiny_model_dir, gated=True)
        monkeypatch.setenv("HF_ENDPOINT", server.url)
        monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
        monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
        monkeypatch.setattr(constants, "DOWNLOAD_CHUNK_SIZE", 64 * 1024)
        yield server


def _snapshot_matches(folder: Path, source: Path) -> bool:
    names = {p.name for p in source.iterdir() if p.is_file()}
    return all((folder / name).read_bytes() == (source / name).read_bytes() for name in names)


def _ranges(hub: HubServer, name: str) -> list[str]:
    return [
        headers.get("range", "")
        for method, path, headers in hub.state.requests
        if method == "GET" and path.endswith(name)
    ]


def test_plan_lists_the_files_with_their_sizes(hub: HubServer, tiny_model_dir: Path) -> None:
    plan = plan_download("org/tiny")
    sizes = {file.name: file.size for file in plan.files}
    assert sizes["model.safetensors"] == (tiny_model_dir / "model.safetensors").stat().st_size
    assert "config.json" in sizes and "tokenizer.json" in sizes
    assert plan.total == sum(sizes.values())
    assert plan.revision == hub.state.repos["org/tiny"].sha


def test_download_reports_per_file_and_overall_progress(hub: HubServer, tiny_model_dir: Path) -> None:
    plan = plan_download("org/tiny")
    events: list[downloads.DownloadProgress] = []
    folder = download(plan, events.append)
    assert _snapshot_matches(folder, tiny_model_dir)
    weights = [e for e in events if e.file == "model.safetensors"]
    assert len({e.file_done for e in weights}) > 3  # it moved within the file
    assert all(0 <= e.file_done <= e.file_total for e in events)
    overall = [e.done for e in events]
    assert overall == sorted(overall)  # never goes back
    assert events[-1].done == events[-1].total == plan.total
    assert events[-1].files_done == len(plan.files)
    assert "MiB" in events[-1].line() and "100 %" in events[-1].line()


def test_a_downloaded_model_loads_offline_by_its_id(
    hub: HubServer, tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fetched by commit, the files get no ref of their own: the download writes refs/main, so the
    id resolves offline (as transformers and the catalogue read it), and the real loader loads it."""
    from huggingface_hub import try_to_load_from_cache

    from tui.engine.sources import check_hub_cached

    plan = plan_download("org/tiny")
    folder = download(plan)
    assert (folder.parent.parent / "refs" / "main").read_text() == plan.revision
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    assert try_to_load_from_cache("org/tiny", "config.json") == str(folder / "config.json")
    check_hub_cached("org/tiny")  # no "not in the Hugging Face cache"
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained("org/tiny", cache_dir=constants.HF_HUB_CACHE)
    assert model.config.hidden_size > 0


def test_cancel_keeps_what_came_and_the_next_download_resumes(hub: HubServer, tiny_model_dir: Path) -> None:
    plan = plan_download("org/tiny")
    cancel = threading.Event()

    def cancel_half_way(event: downloads.DownloadProgress) -> None:
        if event.file == "model.safetensors" and event.file_done > event.file_total // 2:
            cancel.set()

    with pytest.raises(DownloadCancelled, match="kept"):
        download(plan, cancel_half_way, cancel)
    partial = list((Path(constants.HF_HUB_CACHE) / "models--org--tiny" / "blobs").glob("*.chatui-partial"))
    assert len(partial) == 1 and partial[0].stat().st_size > 0
    kept = partial[0].stat().st_size

    folder = download(plan)
    assert _snapshot_matches(folder, tiny_model_dir)
    assert _ranges(hub, "model.safetensors")[-1] == f"bytes={kept}-"  # the rest only


class _NoSleep:
    """huggingface_hub's `time`, without the pauses between its retries."""

    def __getattr__(self, name: str):
        return getattr(time, name)

    @staticmethod
    def sleep(_seconds: float) -> None:
        pass


def test_a_dropped_connection_is_resumed_by_the_library(
    hub: HubServer, tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(file_download, "time", _NoSleep())
    hub.state.drops["model.safetensors"] = 1
    folder = download(plan_download("org/tiny"))
    assert _snapshot_matches(folder, tiny_model_dir)
    first, second = _ranges(hub, "model.safetensors")
    assert first == "" and second.startswith("bytes=") and second != "bytes=0-"


def test_a_connection_that_keeps_dropping_is_one_line(hub: HubServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(file_download, "time", _NoSleep())
    hub.state.drops["model.safetensors"] = 100
    with pytest.raises(DownloadError) as caught:
        download(plan_download("org/tiny"))
    message = str(caught.value)
    assert "connection dropped" in message and "model.safetensors" in message and "resume" in message
    assert "\n" not in message


def test_an_unknown_repo_is_one_line(hub: HubServer) -> None:
    with pytest.raises(DownloadError) as caught:
        plan_download("org/missing")
    assert str(caught.value) == "no model 'org/missing' on the Hub (404): check the id"


def test_a_missing_file_is_one_line(hub: HubServer) -> None:
    plan = plan_download("org/tiny")
    del hub.state.repos["org/tiny"].files["config.json"]
    with pytest.raises(DownloadError, match=r"config.json is not on the Hub \(404\)"):
        download(plan)


def test_a_full_disk_is_refused_before_the_first_byte(hub: HubServer, monkeypatch: pytest.MonkeyPatch) -> None:
    plan = plan_download("org/tiny")
    monkeypatch.setattr(downloads.shutil, "disk_usage", lambda path: type("Usage", (), {"free": 1024})())
    with pytest.raises(DownloadError, match=r"needs \d+ MiB but only 0 MiB is free"):
        download(plan)
    assert not [r for r in hub.state.requests if "/resolve/" in r[1]]


def test_a_disk_that_fills_mid_file_is_one_line(hub: HubServer, monkeypatch: pytest.MonkeyPatch) -> None:
    real_http_get = file_download.http_get

    class FullDisk:
        def __init__(self, file, room: int) -> None:
            self.file, self.room = file, room

        def write(self, data: bytes) -> int:
            if len(data) > self.room:
                raise OSError(errno.ENOSPC, "No space left on device")
            self.room -= len(data)
            return self.file.write(data)

        def __getattr__(self, name: str):
            return getattr(self.file, name)

    def http_get(url, temp_file, **kwargs):
        return real_http_get(url, FullDisk(temp_file, 200_000), **kwargs)

    monkeypatch.setattr(file_download, "http_get", http_get)
    plan = plan_download("org/tiny")
    plan.files.sort(key=lambda f: f.name != "model.safetensors")
    with pytest.raises(DownloadError) as caught:
        download(plan)
    assert str(caught.value).startswith("the disk is full while downloading org/tiny model.safetensors")


def test_a_gated_repo_asks_for_a_token_which_is_stored_where_huggingface_hub_reads_it(
    hub: HubServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tiny_model_dir: Path
) -> None:
    from huggingface_hub import get_token, hf_api

    with pytest.raises(TokenRequired, match="org/gated is gated"):
        plan_download("org/gated")
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(tmp_path / "token"))
    monkeypatch.setattr(constants, "HF_STORED_TOKENS_PATH", str(tmp_path / "stored_tokens"))
    monkeypatch.setattr(hf_api.api, "endpoint", hub.url)  # login() checks the token with the module's HfApi
    with pytest.raises(DownloadError, match="refused that token"):
        downloads.save_token("hf_wrong")
    downloads.save_token(TOKEN)
    assert (tmp_path / "token").read_text() == TOKEN
    assert get_token() == TOKEN
    folder = download(plan_download("org/gated"))  # huggingface_hub sends the stored token
    assert _snapshot_matches(folder, tiny_model_dir)


def test_offline_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(DownloadError, match="offline"):
        plan_download("org/tiny")


def test_a_gguf_repo_downloads_one_quantization_and_loads_by_its_file(hub: HubServer, tmp_path: Path) -> None:
    from tui.core.catalogue import build_catalogue
    from tui.engine.downloads import loadable

    folder = tmp_path / "gguf-repo"
    folder.mkdir()
    for name, size in (("m.Q8_0.gguf", 3000), ("m.Q4_K_M.gguf", 2000), ("m.Q2_K.gguf", 1000)):
        (folder / name).write_bytes(b"GGUF" + bytes(size))
    (folder / "README.md").write_text("a GGUF repo")
    hub.state.add_folder("org/m-GGUF", folder)
    plan = plan_download("org/m-GGUF")
    assert sorted(f.name for f in plan.files) == ["README.md", "m.Q4_K_M.gguf"]
    assert set(plan.skipped) == {"m.Q8_0.gguf", "m.Q2_K.gguf"}
    snapshot = download(plan)
    assert loadable(snapshot, "org/m-GGUF") == str(snapshot / "m.Q4_K_M.gguf")
    entries, _ = build_catalogue(None, [], [])
    entry = next(e for e in entries if e.name == "org/m-GGUF")
    assert entry.kind == "gguf" and entry.model == str(snapshot / "m.Q4_K_M.gguf") and entry.in_hub_cache
