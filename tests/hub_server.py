"""A local stand-in for the Hugging Face Hub on 127.0.0.1: the HTTP API huggingface_hub's download
code uses (model info with siblings, `resolve/REV/FILE` with ETag, X-Repo-Commit and
Content-Length, Range for resume, whoami for a token), for repos whose files a test gives.

Behaviours a test can switch on: a gated repo (401 + X-Error-Code GatedRepo without the token)
a connection dropped mid-file (the next `drops[name]` GETs of a file stop half way) and a slow
link (`pace_s` after each 64 KiB). Every
request is recorded, its header names in lower case.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlparse

TOKEN = "hf_test_token_0123456789"


@dataclass
class Repo:
    files: dict[str, bytes]
    sha: str = "0123456789abcdef0123456789abcdef01234567"
    gated: bool = False


@dataclass
class HubState:
    repos: dict[str, Repo] = field(default_factory=dict)
    drops: dict[str, int] = field(default_factory=dict)  # file name → GETs still to drop half way
    pace_s: float = 0.0  # a pause after each 64 KiB of a file's body (a slow link, for cancel tests)
    requests: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)

    def add_folder(self, repo_id: str, folder: Path, gated: bool = False) -> Repo:
        files = {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}
        repo = Repo(files, hashlib.sha1(repo_id.encode()).hexdigest(), gated)
        self.repos[repo_id] = repo
        return repo


def _etag(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class _Handler(BaseHTTPRequestHandler):
    state: HubState
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:  # quiet
        pass

    def _send(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _authorised(self, repo: Repo) -> bool:
        return not repo.gated or self.headers.get("Authorization") == f"Bearer {TOKEN}"

    def _refuse(self, repo_id: str) -> None:
        body = json.dumps({"error": f"Access to model {repo_id} is restricted."}).encode()
        self._send(401, body, {"X-Error-Code": "GatedRepo", "X-Error-Message": "Access restricted"})

    def _not_found(self, code: str = "RepoNotFound") -> None:
        self._send(404, b'{"error": "not found"}', {"X-Error-Code": code, "Content-Type": "application/json"})

    def do_HEAD(self) -> None:
        self._route()

    def do_GET(self) -> None:
        self._route()

    def _route(self) -> None:
        path = unquote(urlparse(self.path).path)
        self.state.requests.append((self.command, path, {k.lower(): v for k, v in self.headers.items()}))
        if path == "/api/whoami-v2":
            if self.headers.get("Authorization") == f"Bearer {TOKEN}":
                answer = {"name": "tester", "auth": {"accessToken": {"displayName": "chatui-test", "role": "read"}}}
                return self._send(200, json.dumps(answer).encode(), {"Content-Type": "application/json"})
            return self._send(401, b'{"error": "Invalid credentials in Authorization header"}')
        if path.startswith("/api/models/"):
            return self._model_info(path.removeprefix("/api/models/"))
        if "/resolve/" in path:
            repo_id, _, rest = path.lstrip("/").partition("/resolve/")
            _revision, _, name = rest.partition("/")
            return self._file(repo_id, name)
        self._not_found()

    def _model_info(self, rest: str) -> None:
        repo_id = rest.split("/revision/")[0]
        repo = self.state.repos.get(repo_id)
        if repo is None:
            return self._not_found()
        if not self._authorised(repo):
            return self._refuse(repo_id)
        siblings = [
            {"rfilename": name, "size": len(data), "blobId": _etag(data)[:40]} for name, data in repo.files.items()
        ]
        answer = {"id": repo_id, "modelId": repo_id, "sha": repo.sha, "siblings": siblings, "private": False}
        answer["gated"] = "auto" if repo.gated else False
        self._send(200, json.dumps(answer).encode(), {"Content-Type": "application/json"})

    def _file(self, repo_id: str, name: str) -> None:
        repo = self.state.repos.get(repo_id)
        if repo is None:
            return self._not_found()
        if not self._authorised(repo):
            return self._refuse(repo_id)
        data = repo.files.get(name)
        if data is None:
            return self._not_found("EntryNotFound")
        headers = {"ETag": f'"{_etag(data)}"', "X-Repo-Commit": repo.sha, "Accept-Ranges": "bytes"}
        start = 0
        asked = self.headers.get("Range", "")
        if asked.startswith("bytes=") and self.command == "GET":
            start = int(asked.removeprefix("bytes=").split("-")[0] or 0)
        body = data[start:]
        if self.command == "HEAD":
            return self._head(headers, len(data))
        status = 206 if start else 200
        if start:
            headers["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        half = len(body) // 2
        if self.state.drops.get(name, 0) > 0:
            self.state.drops[name] -= 1
            self.wfile.write(body[:half])
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(2)
            return
        if self.state.pace_s:
            for start in range(0, len(body), 64 * 1024):
                self.wfile.write(body[start : start + 64 * 1024])
                time.sleep(self.state.pace_s)
            return
        self.wfile.write(body)

    def _head(self, headers: dict[str, str], size: int) -> None:
        self.send_response(200)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(size))
        self.end_headers()


class HubServer:
    def __init__(self) -> None:
        self.state = HubState()
        handler = type("Handler", (_Handler,), {"state": self.state})
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> HubServer:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
