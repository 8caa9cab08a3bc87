"""`chatui --prompt`: headless turns, exit codes, and a kill -9 mid-reply."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time

from processes import (
    ROOT,
    PipeReader,
    integrity,
    kill_9,
    library_file,
    poll,
    raw_rows,
    run_cli,
    spawned,
    subprocess_env,
)

from tui.store import Library


def test_kill_9_during_a_headless_reply_keeps_all_but_the_last_two_seconds(tmp_path, smollm2_dir):
    """The reply being written is saved as it streams (every ~2 s): killed mid-reply, the library
    is whole, the first exchange is there, and the second reply holds everything streamed up to
    two seconds before the kill, marked interrupted, and can be continued."""
    env = subprocess_env(tmp_path)
    db_path = library_file(tmp_path)
    command = [
        sys.executable,
        "-m",
        "tui",
        "do_sample=false",
        "max_new_tokens=300",
        "--prompt",
        "Say hi.",
        "--prompt",
        "Write a long story about a lighthouse keeper and his cat.",
        "--stats",
    ]
    with spawned(command, env, stderr=subprocess.PIPE) as proc:
        out, err = PipeReader(proc.stdout), PipeReader(proc.stderr)
        poll(lambda: "turn=1" in err.text(), 180, "the first turn to end", proc, err)
        reply1 = raw_rows(
            db_path,
            "SELECT p.text FROM message_parts p JOIN messages m ON m.id = p.message_id "
            "WHERE m.role = 'assistant' ORDER BY m.seq",
        )[0][0]
        first_turn_bytes = len(reply1.encode()) + 2  # the reply, its newline, the blank line between turns
        poll(lambda: len(out) > first_turn_bytes, 60, "the second reply to stream", proc, err)
        second_started = time.monotonic()
        poll(lambda: time.monotonic() - second_started > 4.5, 10, "four seconds of the second reply", proc, err)
        killed_at = time.monotonic()
        kill_9(proc)
    out.join()
    assert "turn=2" not in err.text()  # it really was mid-reply
    streamed = out.data.decode()
    assert streamed.startswith(reply1 + "\n\n")
    streamed2 = streamed[first_turn_bytes:]
    two_seconds_before = out.data[first_turn_bytes : out.bytes_at(killed_at - 2.2)].decode("utf-8", "ignore")
    assert integrity(db_path) == "ok"
    library = Library(db_path)
    assert library.recovered_from is None  # the file was not judged damaged
    [summary] = library.list()
    conv = library.get(summary.id)
    roles = [(m.role, m.status) for m in conv.messages]
    assert roles[:3] == [("user", "ok"), ("assistant", conv.messages[1].status), ("user", "ok")]
    assert conv.messages[1].content == reply1
    second = conv.messages[3]
    assert (second.role, second.status) == ("assistant", "interrupted")
    assert streamed2.startswith(second.content)  # what was saved is what was streamed
    assert len(second.content) >= len(two_seconds_before.rstrip()) > 0  # at most ~2 s lost
    library.close()
    listed = subprocess.run(
        [sys.executable, "-m", "tui", "--list"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert listed.returncode == 0, listed.stderr
    assert summary.id[:8] in listed.stdout


def test_headless_streams_replies_and_stats(tiny_model_dir):
    result = run_cli(
        str(tiny_model_dir),
        "do_sample=false",
        "max_new_tokens=8",
        "--prompt",
        "Hi",
        "--prompt",
        "-",
        "--stats",
        stdin="from stdin\n",
    )
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("turn=")]
    assert len(lines) == 2 and lines[1].startswith("turn=2 ")
    fields = dict(part.split("=") for part in lines[0].split())
    assert set(fields) == {
        "turn",
        "prompt_tokens",
        "new_tokens",
        "ttft_ms",
        "decode_tok_s",
        "total_ms",
        "rss_mb",
        "dtype",
        "quantization",
        "limit_pct",
    }
    assert (
        fields["new_tokens"] == "8" and fields["dtype"] in ("float32", "bfloat16") and fields["quantization"] == "none"
    )


def test_headless_beam_search_says_it_cannot_stream_and_prints_the_whole_reply(tiny_model_dir, tmp_path):
    env = subprocess_env(tmp_path)
    result = run_cli(
        str(tiny_model_dir), "do_sample=false", "max_new_tokens=6", "num_beams=2", "--prompt", "Hi", "--stats", env=env
    )
    assert result.returncode == 0, result.stderr
    assert "num_beams=2: beam search cannot stream" in result.stderr and "new_tokens=6" in result.stderr
    exported = json.loads(run_cli("--export", "last", env=env).stdout)
    reply = next(m["content"] for m in exported["messages"] if m["role"] == "assistant")
    assert reply and result.stdout == reply + "\n"  # the whole reply, printed once it is done


def test_headless_default_model_answers_paris_and_turns_are_a_blank_line_apart(smollm2_dir, tmp_path):
    env = subprocess_env(tmp_path)
    result = run_cli(
        "--prompt",
        "What is the capital of France?",
        "--prompt",
        "And of Italy?",
        "do_sample=false",
        "max_new_tokens=24",
        "--stats",
        env=env,
    )
    assert result.returncode == 0, result.stderr
    assert "Paris" in result.stdout
    assert "turn=1 prompt_tokens=" in result.stderr
    exported = json.loads(run_cli("--export", "last", env=env).stdout)
    first, second = (m["content"] for m in exported["messages"] if m["role"] == "assistant")
    assert result.stdout == f"{first}\n\n{second}\n"  # each reply, and a blank line between turns


def test_a_normal_run_prints_no_library_warning_and_logs_it(tmp_path, tiny_model_dir):
    """length_penalty without beams makes transformers warn: into the log file, not the reply."""
    env = subprocess_env(tmp_path)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "tui",
            str(tiny_model_dir),
            "do_sample=false",
            "max_new_tokens=4",
            "length_penalty=0.5",
            "--prompt",
            "hi",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == "" and "[transformers]" not in result.stdout
    log = tmp_path / "state" / "chatui" / "log" / "chatui.log"
    assert "length_penalty" in log.read_text(encoding="utf-8")


def test_headless_on_a_remote_server_streams_and_a_cut_stream_exits_1_keeping_the_text(tmp_path):
    from fake_openai import FakeOpenAI

    env = subprocess_env(tmp_path)
    with FakeOpenAI() as server:
        result = run_cli("--endpoint", server.url, "fake/model-a", "--prompt", "hi", "--stats", env=env)
        assert result.returncode == 0, result.stderr
        assert result.stdout == "Hello there, how can I help?\n"
        assert "turn=1 prompt_tokens=17 new_tokens=8" in result.stderr
        server.behaviour = "cut"
        result = run_cli("--endpoint", server.url, "fake/model-a", "--prompt", "again", env=env)
        assert result.returncode == 1
        assert result.stdout == "Hello there,\n"  # what came before the cut
        assert "ended before the reply did" in result.stderr and "Traceback" not in result.stderr
        server.behaviour = 404
        result = run_cli("--endpoint", server.url, "no/such-model", "--prompt", "hi", env=env)
        assert result.returncode == 1 and "Traceback" not in result.stderr
        assert result.stderr.count("\n") == 1, result.stderr  # one line


def test_logprobs_file_has_one_json_line_per_token_and_the_library_keeps_them(tmp_path, tiny_model_dir):
    env = subprocess_env(tmp_path)
    out = tmp_path / "probs.jsonl"
    result = run_cli(
        str(tiny_model_dir),
        "do_sample=false",
        "max_new_tokens=6",
        "--prompt",
        "Hi",
        "--logprobs",
        "3",
        "--logprobs-file",
        str(out),
        env=env,
    )
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert len(lines) == 6
    for line in lines:
        assert set(line) == {"token", "id", "logprob", "top"}
        assert len(line["top"]) == 3 and set(line["top"][0]) == {"token", "id", "logprob"}
        assert line["top"][0]["id"] == line["id"]  # greedy: the chosen token is the most likely one
        assert line["logprob"] <= 0
    exported = json.loads(run_cli("--export", "last", env=env).stdout)
    reply = [m for m in exported["messages"] if m["role"] == "assistant"][0]
    stored = reply["stats"]["logprobs"]
    assert [token[0] for token in stored] == [line["id"] for line in lines]
    markdown = run_cli("--export", "last", "--format", "md", env=env).stdout
    assert "logprobs" not in markdown  # JSON only


def test_logprobs_flags_are_checked(tiny_model_dir):
    for args, message in (
        (["--logprobs", "3"], "go together"),
        (["--logprobs", "0", "--logprobs-file", "x.jsonl"], "from 1 to 20"),
        (["--logprobs", "3", "--logprobs-file", "/no/such/dir/x.jsonl"], "cannot write"),
    ):
        result = run_cli(str(tiny_model_dir), "--prompt", "Hi", *args)
        assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr


def test_headless_adapters_the_last_in_use_named_in_stats_and_recorded(tiny_model_dir, tiny_adapters, tmp_path):
    env = subprocess_env(tmp_path)
    result = run_cli(
        str(tiny_model_dir),
        "do_sample=false",
        "max_new_tokens=4",
        "--adapter",
        f"t={tiny_adapters['tone']}",
        "--adapter",
        str(tiny_adapters["style"]),
        "--prompt",
        "Hi",
        "--stats",
        env=env,
    )
    assert result.returncode == 0, result.stderr
    assert " adapter=style" in next(line for line in result.stderr.splitlines() if line.startswith("turn="))
    exported = json.loads(run_cli("--export", "last", env=env).stdout)
    recorded = next(m for m in exported["messages"] if m["role"] == "assistant")["stats"]["adapters"]
    assert [(a["name"], a["path"], a["weight"], len(a["sha256"])) for a in recorded] == [
        ("style", str(tiny_adapters["style"]), 1.0, 16)
    ]


def headless(argv: list[str], engine) -> tuple[int, str]:
    """`run_headless` in this process: its exit code and what it wrote to stderr."""
    import io

    from tui.cli.headless import run_headless
    from tui.cli.main import parse_args

    stdout, stderr = io.StringIO(), io.StringIO()
    code = run_headless(parse_args([*argv, "--prompt", "Hi", "--no-save"]), engine, stdout=stdout, stderr=stderr)
    return code, stderr.getvalue()


def test_a_bad_adapter_exits_1_with_one_line_and_a_server_has_none(tiny_model_dir, tmp_path):
    from fakes import ScriptedEngine

    from tui.engine import Engine

    argv = [str(tiny_model_dir), "--adapter", str(tmp_path / "nowhere")]
    assert headless(argv, Engine()) == (1, f"chatui: adapter not found: {tmp_path / 'nowhere'}\n")
    code, err = headless(argv, ScriptedEngine())
    assert code == 1 and "--adapter needs a model loaded here" in err


def test_merge_adapter_says_switching_then_needs_a_reload(tiny_model_dir, tiny_adapters):
    from tui.engine import Engine

    argv = [str(tiny_model_dir), "max_new_tokens=2", "--adapter", str(tiny_adapters["tone"]), "--merge-adapter"]
    code, err = headless([*argv, "--stats"], Engine())
    assert code == 0
    assert "chatui: tone (merged): switching adapters now needs a reload" in err
    assert re.search(r" adapter=tone\(merged\)( limit_pct=\d+)?\n", err)  # limit_pct ends the line


def test_the_load_line_clock_moves_while_a_step_reports_nothing():
    """Reading a GGUF's header reports nothing for seconds: the line is redrawn every second."""
    import io
    import threading
    from concurrent.futures import Future

    from tui.cli.headless import LoadLine

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    terminal = Terminal()
    line = LoadLine(terminal)
    line.show(2, 100, "converting GGUF: reading its header")
    future: Future[str] = Future()
    threading.Timer(2.5, future.set_result, ("loaded",)).start()
    assert line.wait(future) == "loaded"
    drawn = terminal.getvalue().split("\r\x1b[2K")
    assert len(drawn) >= 3 and drawn[-1].startswith("chatui: converting GGUF: reading its header · 2 % · ")
    assert int(drawn[-1].rsplit("· ", 1)[1].removesuffix(" s")) >= 2  # its clock moved
