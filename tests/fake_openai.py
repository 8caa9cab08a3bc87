"""A small OpenAI-compatible server on 127.0.0.1 for the remote backend's fault tests: it streams
scripted replies over SSE, and can answer with an HTTP error, cut a stream, send malformed SSE,
stall, or stream reasoning. Every request it got is kept (headers and body) for the tests."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class FakeOpenAI:
    """`behaviour` picks what /v1/chat/completions does: "ok", "reasoning", an HTTP status such as
    401, "cut" (the connection closes mid-reply), "malformed" (a data line that is not JSON),
    "stall" (nothing after the first chunk), "slow" (a chunk every 50 ms, for stop tests)."""

    def __init__(self, words: list[str] | None = None, models: list[str] | None = None) -> None:
        self.words = words or ["Hello", " there", ",", " how", " can", " I", " help", "?"]
        self.models = models or ["fake/model-a", "fake/model-b"]
        self.parents: dict[str, str] = {}  # a model's `parent`, as vLLM lists its LoRA adapters
        self.behaviour: Any = "ok"
        self.requests: list[dict[str, Any]] = []
        self.chunks_sent = 0
        self.closed_by_client = threading.Event()  # a stream ended because the client hung up
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def _json(self, status: int, data: Any) -> None:
                body = json.dumps(data).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                fake.requests.append({"path": self.path, "headers": dict(self.headers)})
                if self.path == "/v1/models":
                    data = [{"id": m, "object": "model", "root": m, "parent": fake.parents.get(m)} for m in fake.models]
                    self._json(200, {"object": "list", "data": data})
                else:
                    self._json(404, {"error": {"message": "no such route"}})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                fake.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
                behaviour = fake.behaviour
                if isinstance(behaviour, int):
                    self._json(behaviour, {"error": {"message": f"scripted {behaviour}"}})
                    return
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Connection", "close")
                self.end_headers()
                try:
                    fake._stream(self.wfile, behaviour, bool(body.get("logprobs")))
                except (BrokenPipeError, ConnectionResetError):
                    fake.closed_by_client.set()  # the client closed the stream (stop)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def _stream(self, out: Any, behaviour: str, logprobs: bool = False) -> None:
        def send(data: Any) -> None:
            out.write(f"data: {data if isinstance(data, str) else json.dumps(data)}\n\n".encode())
            out.flush()
            self.chunks_sent += 1

        def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
            return {
                "object": "chat.completion.chunk",
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            }

        if behaviour == "reasoning":
            send(chunk({"reasoning_content": "Let me think."}))
            send(chunk({"reasoning_content": " Yes."}))
        if behaviour == "tool_call":  # OpenAI's tool_calls deltas: the arguments come in pieces
            send(chunk({"content": "Let me add."}))
            send(
                chunk(
                    {
                        "tool_calls": [
                            {
                                "index": 0,
                                "id": "call_srv1",
                                "type": "function",
                                "function": {"name": "add", "arguments": ""},
                            }
                        ]
                    }
                )
            )
            for piece in ('{"a": 2', ', "b": 40}'):
                send(chunk({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]}))
            send(chunk({}, "tool_calls"))
            send("[DONE]")
            return
        words = self.words * 50 if behaviour == "slow" else self.words
        for index, word in enumerate(words):
            if behaviour == "cut" and index == 3:
                return  # the connection closes: no finish reason, no [DONE]
            if behaviour == "malformed" and index == 3:
                send("{this is not json")
                return
            if behaviour == "stall" and index == 1:
                time.sleep(5)
                return
            if behaviour == "slow":
                time.sleep(0.05)
            piece = chunk({"content": word})
            if logprobs:  # OpenAI's form: the token, its log-probability, the most likely ones
                piece["choices"][0]["logprobs"] = {
                    "content": [
                        {
                            "token": word,
                            "logprob": -0.25,
                            "top_logprobs": [{"token": word, "logprob": -0.25}, {"token": " else", "logprob": -1.75}],
                        }
                    ]
                }
            send(piece)
        send(chunk({}, "stop"))
        send(
            {
                "object": "chat.completion.chunk",
                "choices": [],
                "usage": {"prompt_tokens": 17, "completion_tokens": len(words), "total_tokens": 17 + len(words)},
            }
        )
        send("[DONE]")

    def __enter__(self) -> FakeOpenAI:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()
