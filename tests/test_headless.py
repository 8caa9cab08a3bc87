"""`chatui --prompt`: headless turns, exit codes, and a kill -9 mid-reply."""

from __future__ import annotations

import sqlite3
import subprocess
import sys

from processes import (
    ROOT,
    PipeReader,
    integrity,
    kill_9,
    library_file,
    poll,
    raw_rows,
    subprocess_env,
)

from tui.store import Library


def test_kill_9_during_a_headless_reply_keeps_the_library_whole(tmp_path, tiny_model_dir):
    env = subprocess_env(tmp_path)
    db_path = library_file(tmp_path)
    proc = subprocess.Popen(
        [sys.executable, "-m", "tui", str(tiny_model_dir), "do_sample=false", "max_new_tokens=400",
         "--prompt", "first", "--prompt", "second", "--stats"],
        cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = PipeReader(proc.stdout), PipeReader(proc.stderr)
    try:
        def first_reply() -> str | None:
            if not db_path.exists():
                return None
            try:
                rows = raw_rows(db_path, "SELECT content FROM messages WHERE role = 'assistant' ORDER BY seq")
            except sqlite3.Error:  # not created yet
                return None
            return rows[0][0] if rows else None

        poll(lambda: first_reply() is not None, 120, "the first reply to be saved", proc, err)
        reply1 = first_reply()
        first_turn_bytes = len(reply1.encode()) + 1  # the reply, then the newline run_headless adds
        # The second turn has begun streaming once stdout holds more than the first turn.
        poll(lambda: len(out) > first_turn_bytes, 60, "the second reply to stream", proc, err)
        streamed_at_kill = out.text()
        kill_9(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    out.join()
    assert streamed_at_kill.startswith(reply1 + "\n")
    assert "turn=2" not in err.text()  # it really was mid-reply
    assert integrity(db_path) == "ok"
    library = Library(db_path)
    assert library.recovered_from is None  # the file was not judged damaged
    [summary] = library.list()
    conv = library.get(summary.id)
    assert [(m.role, m.content) for m in conv.messages] == [
        ("user", "first"), ("assistant", reply1), ("user", "second")]
    assert conv.messages[1].status == "length"
    library.close()
    listed = subprocess.run([sys.executable, "-m", "tui", "--list"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=60)
    assert listed.returncode == 0, listed.stderr
    assert summary.id[:8] in listed.stdout and "first" in listed.stdout
