"""Downloading a model from the Hub into the Hugging Face cache with huggingface_hub's own code.

The repo's files are listed first (`model_info` with their sizes), then each is fetched with
`hf_hub_download`, whose `tqdm_class` reports the bytes of that file: per-file and overall
progress. huggingface_hub keeps a partial file as `.incomplete` and resumes it with a Range
request, so a cancel (raised from the progress callback) or a dropped connection keeps what came,
and the next download of the same repo goes on from there. Every failure is one line
(`DownloadError`); a gated or private repo is `TokenRequired`, and `save_token` stores a token
where huggingface_hub keeps it. No Textual here; the picker and `chatui --download` share it.
"""

from __future__ import annotations

import errno
import logging
import os
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tui.engine.hub_cache import hub_cache_dir

log = logging.getLogger(__name__)

# Weights and what a transformers model needs beside them; pickle weights and other formats'
# copies (onnx, tflite, flax, original checkpoints) are left on the Hub.
SKIP_PATTERNS = ("*.bin", "*.pt", "*.pth", "*.ckpt", "*.h5", "*.msgpack", "*.onnx", "*.onnx_data", "*.tflite", "*.ot")
READ_SIZE = 2**20  # bytes per read of a download: progress and resume move in steps of this
SKIP_FOLDERS = ("onnx/", "openvino/", "original/", "coreml/", "tflite/")


class DownloadError(Exception):
    """The download stopped; one line for the user (what was downloaded is kept)."""


class TokenRequired(DownloadError):
    """The repo is gated or private: a Hugging Face token is needed."""


class DownloadCancelled(DownloadError):
    pass


@dataclass(frozen=True)
class RemoteFile:
    name: str
    size: int


@dataclass
class DownloadPlan:
    repo_id: str
    revision: str  # the commit the files come from
    files: list[RemoteFile]
    skipped: list[str] = field(default_factory=list)
    ref: str = "main"  # the branch that commit was read from: the cache's ref to it

    @property
    def total(self) -> int:
        return sum(file.size for file in self.files)


@dataclass
class DownloadProgress:
    file: str
    file_done: int
    file_total: int
    done: int  # bytes of every file, the ones before this included
    total: int
    files_done: int
    files_total: int
    elapsed_s: float

    @property
    def rate(self) -> float:
        return self.done / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def line(self) -> str:
        """One progress line: `3/7 files  412.0/988.1 MiB  42 %  12.3 MiB/s  model.safetensors`."""
        pct = 100 * self.done / self.total if self.total else 100
        return (
            f"{self.files_done}/{self.files_total} files  {self.done / 2**20:.1f}/{self.total / 2**20:.1f} MiB  "
            f"{pct:.0f} %  {self.rate / 2**20:.1f} MiB/s  {self.file}"
        )


OnProgress = Callable[[DownloadProgress], None]


def hub_endpoint() -> str:
    """The Hub's address: HF_ENDPOINT as it is now (huggingface_hub reads it once, at import)."""
    from huggingface_hub import constants

    return (os.environ.get("HF_ENDPOINT") or constants.ENDPOINT).rstrip("/")


def hub_offline() -> bool:
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE)


def _wanted(name: str) -> bool:
    from fnmatch import fnmatch

    return not name.startswith(SKIP_FOLDERS) and not any(fnmatch(name, pattern) for pattern in SKIP_PATTERNS)


def describe_error(exc: BaseException, repo_id: str, what: str = "") -> DownloadError:
    """huggingface_hub's and httpx's errors as one line each."""
    import httpx2
    from huggingface_hub import errors

    where = f" {what}" if what else ""
    if isinstance(exc, DownloadError):
        return exc
    if isinstance(exc, errors.GatedRepoError):
        return TokenRequired(
            f"{repo_id} is gated: accept its terms on huggingface.co, then give a token with access to it"
        )
    if isinstance(exc, errors.RepositoryNotFoundError):
        status = exc.response.status_code if exc.response is not None else 0
        if status in (401, 403):
            return TokenRequired(f"{repo_id} is private or needs a login ({status}): give a Hugging Face token")
        return DownloadError(f"no model {repo_id!r} on the Hub ({status or 'not found'}): check the id")
    if isinstance(exc, errors.RevisionNotFoundError):
        return DownloadError(f"{repo_id}: that revision is not on the Hub")
    if isinstance(exc, errors.RemoteEntryNotFoundError):
        return DownloadError(f"{repo_id}:{where} is not on the Hub (404)")
    if isinstance(exc, errors.OfflineModeIsEnabled):
        return DownloadError("the Hub is offline here (HF_HUB_OFFLINE is set): unset it to download")
    if isinstance(exc, errors.HfHubHTTPError):
        status = exc.response.status_code if exc.response is not None else "?"
        return DownloadError(f"the Hub answered {status} for {repo_id}{where}: {_first_line(exc)}")
    if isinstance(exc, (httpx2.RemoteProtocolError, httpx2.ReadError, httpx2.TimeoutException)):
        return DownloadError(
            f"the connection dropped while downloading {repo_id}{where}; what came is kept: download again to resume"
        )
    if isinstance(exc, (httpx2.ConnectError, httpx2.NetworkError)):
        return DownloadError(f"cannot reach the Hub for {repo_id}: {_first_line(exc)}")
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        return DownloadError(
            f"the disk is full while downloading {repo_id}{where} into {hub_cache_dir()}: free some space "
            "(what came is kept) and download again"
        )
    if isinstance(exc, OSError):
        return DownloadError(f"cannot write {repo_id}{where}: {exc.strerror or _first_line(exc)}")
    return DownloadError(f"download of {repo_id} failed: {_first_line(exc)}")


def _first_line(exc: BaseException) -> str:
    lines = [line for line in str(exc).strip().splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


def plan_download(repo_id: str, token: str | None = None) -> DownloadPlan:
    """The files a download of `repo_id` fetches, with their sizes, from the Hub."""
    from huggingface_hub import HfApi

    if hub_offline():
        raise DownloadError("the Hub is offline here (HF_HUB_OFFLINE is set): unset it to download")
    try:
        info = HfApi(endpoint=hub_endpoint()).model_info(repo_id, files_metadata=True, token=token)
    except Exception as exc:
        raise describe_error(exc, repo_id) from exc
    siblings = info.siblings or []
    wanted = [RemoteFile(s.rfilename, int(s.size or 0)) for s in siblings if _wanted(s.rfilename)]
    skipped = [s.rfilename for s in siblings if not _wanted(s.rfilename)]
    if not any(f.name.endswith((".safetensors", ".gguf")) for f in wanted):
        raise DownloadError(f"{repo_id} has no safetensors or GGUF weights chatui can load")
    ggufs = [f for f in wanted if f.name.lower().endswith(".gguf")]
    if len(ggufs) > 1 and not any(f.name == "config.json" for f in wanted):
        keep = pick_gguf(ggufs)  # a GGUF repo holds one file per quantization: one is enough
        skipped += [f.name for f in ggufs if f is not keep]
        wanted = [f for f in wanted if f is keep or not f.name.lower().endswith(".gguf")]
    return DownloadPlan(repo_id, str(info.sha or "main"), wanted, skipped)


# The quantizations a GGUF repo is read in, best first: llama.cpp's usual default, then the
# smaller and larger ones transformers can dequantize.
GGUF_PREFERENCE = ("Q4_K_M", "Q4_K_S", "Q5_K_M", "Q4_0", "Q4_1", "Q5_K_S", "Q5_0", "Q6_K", "Q8_0", "Q3_K_M", "F16")


def pick_gguf(files: list[RemoteFile]) -> RemoteFile:
    """The one GGUF file of a repo of many to download: by GGUF_PREFERENCE, else the smallest."""
    for quantization in GGUF_PREFERENCE:
        for file in files:
            if quantization.lower() in file.name.lower():
                return file
    return min(files, key=lambda file: file.size)


def loadable(folder: Path, repo_id: str) -> str:
    """What to load from a downloaded snapshot: the Hub id of a transformers model, or the path
    of the GGUF file of a GGUF-only repo (transformers reads those by file)."""
    if (folder / "config.json").is_file():
        return repo_id
    ggufs = sorted(folder.glob("*.gguf"))
    return str(ggufs[0]) if ggufs else repo_id


class _FileBar:
    """What hf_hub_download takes as its tqdm_class: each update is passed on as progress, and
    a cancel raises from inside the download (the .incomplete file stays for a resume)."""

    def __init__(self, report: Callable[[int, int], None], cancel: threading.Event, **kwargs: Any) -> None:
        self.total = int(kwargs.get("total") or 0)
        self.n = int(kwargs.get("initial") or 0)
        self._report, self._cancel = report, cancel
        self._report(self.n, self.total)

    def update(self, n: float | None = 1) -> None:
        if self._cancel.is_set():
            raise DownloadCancelled("download cancelled; what came is kept: download again to resume")
        self.n += int(n or 0)
        self._report(self.n, self.total)

    def __enter__(self) -> _FileBar:
        return self

    def __exit__(self, *exc: Any) -> None:
        pass

    def close(self) -> None:
        pass

    def set_postfix_str(self, *args: Any, **kwargs: Any) -> None:
        pass

    def refresh(self, *args: Any, **kwargs: Any) -> None:
        pass


def check_disk(plan: DownloadPlan, cache: Path) -> None:
    """Refuse before the first byte when the files cannot fit."""
    folder = cache
    while not folder.exists() and folder.parent != folder:
        folder = folder.parent
    free = shutil.disk_usage(folder).free
    if plan.total > free:
        raise DownloadError(
            f"{plan.repo_id} needs {plan.total / 2**20:.0f} MiB but only {free / 2**20:.0f} MiB is free in {cache}"
        )


PARTIAL_SUFFIX = ".chatui-partial"  # a blob still coming: kept across a cancel, resumed next time


def _fetch_file(plan: DownloadPlan, name: str, cache: Path, bar: Callable[..., _FileBar], token: str | None) -> None:
    """One file into the cache. huggingface_hub's http_get reads it (Range from `resume_size`,
    retries on a dropped connection) into `blobs/ETAG.chatui-partial`, which survives a cancel;
    once whole it becomes the blob, and hf_hub_download, finding the blob, only links it into
    the snapshot (and writes the ref)."""
    from huggingface_hub import get_hf_file_metadata, hf_hub_download, hf_hub_url, try_to_load_from_cache
    from huggingface_hub.file_download import http_get, repo_folder_name
    from huggingface_hub.utils import build_hf_headers

    endpoint = hub_endpoint()
    if isinstance(try_to_load_from_cache(plan.repo_id, name, cache_dir=str(cache), revision=plan.revision), str):
        return
    url = hf_hub_url(plan.repo_id, name, revision=plan.revision, endpoint=endpoint)
    meta = get_hf_file_metadata(url, token=token, endpoint=endpoint)
    if not meta.etag:
        raise DownloadError(f"the Hub gave no ETag for {plan.repo_id} {name}: cannot cache it")
    blob = cache / repo_folder_name(repo_id=plan.repo_id, repo_type="model") / "blobs" / meta.etag
    if not blob.exists():
        blob.parent.mkdir(parents=True, exist_ok=True)
        partial = blob.with_name(blob.name + PARTIAL_SUFFIX)
        have = partial.stat().st_size if partial.exists() else 0
        if meta.size is not None and have > meta.size:  # not this file after all: start again
            partial.unlink()
            have = 0
        with partial.open("ab") as file:
            http_get(
                meta.location,
                file,
                resume_size=have,
                headers=build_hf_headers(token=token),
                expected_size=meta.size,
                tqdm_class=bar,  # type: ignore[arg-type]
            )
        os.replace(partial, blob)
    hf_hub_download(plan.repo_id, name, revision=plan.revision, cache_dir=str(cache), endpoint=endpoint, token=token)


def download(
    plan: DownloadPlan,
    on_progress: OnProgress | None = None,
    cancel: threading.Event | None = None,
    token: str | None = None,
) -> Path:
    """Fetch every file of `plan` into the cache; returns the snapshot folder. A cancel or a
    failure keeps what came: the next call goes on from there."""
    from huggingface_hub import constants
    from huggingface_hub.file_download import repo_folder_name

    # huggingface_hub reads 10 MiB at a time: progress (and what a cancel or a drop keeps) would
    # move in 10 MiB steps, for seconds on a slow line. 1 MiB reads cost nothing measurable.
    constants.DOWNLOAD_CHUNK_SIZE = min(constants.DOWNLOAD_CHUNK_SIZE, READ_SIZE)
    cancel = cancel or threading.Event()
    cache = hub_cache_dir()
    check_disk(plan, cache)
    started = time.perf_counter()
    before = 0

    def report(name: str, index: int, before: int, done: int, total: int) -> None:
        if on_progress is not None:
            elapsed = time.perf_counter() - started
            on_progress(DownloadProgress(name, done, total, before + done, plan.total, index, len(plan.files), elapsed))

    for index, remote in enumerate(plan.files):
        if cancel.is_set():
            raise DownloadCancelled("download cancelled; what came is kept: download again to resume")

        def file_report(done: int, total: int, remote: RemoteFile = remote, index: int = index, before: int = before):
            report(remote.name, index, before, done, total or remote.size)

        def bar(*args: Any, file_report=file_report, **kwargs: Any) -> _FileBar:
            return _FileBar(file_report, cancel, **kwargs)

        try:
            _fetch_file(plan, remote.name, cache, bar, token)
        except Exception as exc:
            raise describe_error(exc, plan.repo_id, remote.name) from exc
        before += remote.size
        report(remote.name, index + 1, before - remote.size, remote.size, remote.size)
    repo_folder = cache / repo_folder_name(repo_id=plan.repo_id, repo_type="model")
    # The files were fetched by commit, which writes no ref: without refs/main an offline load of
    # the id (what transformers and scan_cache_dir resolve) finds nothing. Written last, once
    # every file is there, as huggingface_hub writes it (the commit, no newline).
    ref = repo_folder / "refs" / plan.ref
    ref.parent.mkdir(parents=True, exist_ok=True)
    ref.write_text(plan.revision)
    report("done", len(plan.files), plan.total, 0, 0)
    log.info("downloaded %s (%d files, %d bytes)", plan.repo_id, len(plan.files), plan.total)
    return repo_folder / "snapshots" / plan.revision


def save_token(token: str) -> None:
    """Check `token` with the Hub and store it where huggingface_hub keeps tokens, as `hf auth
    login` does, so later downloads and transformers use it."""
    from huggingface_hub import login
    from huggingface_hub.errors import HfHubHTTPError

    try:
        login(token=token.strip(), add_to_git_credential=False)
    except (HfHubHTTPError, ValueError) as exc:
        raise DownloadError(f"the Hub refused that token: {_first_line(exc)}") from exc
    except OSError as exc:
        raise DownloadError(f"cannot store the token: {exc.strerror or exc}") from exc
    except Exception as exc:  # refused by the Hub, or an organization token
        raise DownloadError(f"the Hub refused that token: {_first_line(exc)}") from exc
