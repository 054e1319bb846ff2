"""``tidings push --file``: every id of a file reached once, however often the push is stopped and run again."""

from __future__ import annotations

import asyncio
import collections
import json
import os
import pty
import re
import signal
import sys
import time
from pathlib import Path

from tests.cli.conftest import Cli, environment, finish, put_subscribers, slow_proxy, spawn
from tests.conftest import ROOT_KEY

N = 10_000
IDS = [f"u{i:05d}" for i in range(N)]


async def deliveries_by_body(cli: Cli) -> dict[str, collections.Counter[str]]:
    """Every delivery on the server, as the subscriber ids each message body reached (and how often)."""
    reached: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    bodies: dict[str, str] = {}
    cursor = None
    while True:
        answer = await cli.api.get("/v1/deliveries?limit=1000" + (f"&cursor={cursor}" if cursor else ""))
        assert answer.status == 200, answer.body
        for delivery in answer.body["deliveries"]:
            message = delivery["message_id"]
            if message not in bodies:
                bodies[message] = (await cli.api.get(f"/v1/messages/{message}")).body["body"]
            reached[bodies[message]][delivery["subscriber_id"]] += 1
        cursor = answer.body["next_cursor"]
        if not cursor:
            return reached


def messages_in(progress: Path) -> int:
    """The messages a push's progress file has as accepted (0 before it is written)."""
    try:
        return json.loads(progress.read_text())["tally"]["messages"]
    except (OSError, ValueError):
        return 0


async def stopped_midway(url: str, args: list[str], progress: Path, how: int) -> int:
    """Run a push and send it ``how`` (SIGINT, SIGKILL) once its progress file has three batches in; returns
    its exit status."""
    process = await spawn(url, *args)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and messages_in(progress) < 3:
        assert process.returncode is None, "the push ended before it could be stopped"
        await asyncio.sleep(0.01)
    process.send_signal(how)
    done = await finish(process)
    assert "Traceback" not in done.stderr, done.stderr
    if how == signal.SIGINT:
        assert done.status == 130, done.stderr
        assert "interrupted: stopped at line" in done.stderr
        assert "run the same command again to resume" in done.stderr
    return done.status


async def test_a_file_reaches_each_id_once_however_often_it_is_stopped(cli, run_app, tmp_path):
    tidings = await cli()
    await put_subscribers(tidings.api, IDS)
    path = tmp_path / "ids.csv"
    path.write_text("subscriber_id,name\n" + "".join(f"{i},someone\n" for i in IDS))
    progress = tmp_path / "ids.csv.tidings-progress"

    done = await tidings("push", "--file", str(path), "--body", "one", "--channels", "stream", "--json")
    assert done.status == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["finished"] and summary["recipients"] == N and summary["messages"] == N // 1000
    assert not progress.exists()  # removed once the whole file is in

    # Ctrl-C midway, through a proxy that makes each message take a while; then the same command again.
    slow = await run_app(slow_proxy(tidings.url, 0.05))
    two = ["push", "--file", str(path), "--body", "two", "--channels", "stream", "--batch", "250", "--json"]
    await stopped_midway(slow, [*two, "--concurrency", "2"], progress, signal.SIGINT)
    kept = json.loads(progress.read_text())["tally"]
    assert kept["messages"] >= 3 and kept["line"] > 1
    done = await tidings(*two)
    assert done.status == 0, done.stderr
    assert f"resuming at line {kept['line']:,}" in done.stderr
    summary = json.loads(done.stdout)
    assert summary["recipients"] == N and summary["resumed_at_line"] == kept["line"]

    # A kill -9 leaves batches answered but not written down: their keys keep them from going twice.
    three = ["push", "--file", str(path), "--body", "three", "--channels", "stream", "--batch", "250", "--json"]
    await stopped_midway(slow, [*three, "--concurrency", "4"], progress, signal.SIGKILL)
    done = await tidings(*three)
    assert done.status == 0, done.stderr
    assert json.loads(done.stdout)["recipients"] == N

    # --restart reads the whole file again; every batch is answered from its key, none is sent.
    done = await tidings(*two, "--restart")
    assert done.status == 0 and "resuming" not in done.stderr
    assert json.loads(done.stdout)["recipients"] == N

    reached = await deliveries_by_body(tidings)
    assert sorted(reached) == ["one", "three", "two"]
    for body, counts in reached.items():
        assert sorted(counts) == IDS, body
        assert set(counts.values()) == {1}, f"{body}: {[i for i, n in counts.items() if n > 1][:5]} twice"


async def test_a_jsonl_file_puts_its_subscribers_first(cli, tmp_path):
    tidings = await cli()
    await put_subscribers(tidings.api, ["known"])
    path = tmp_path / "people.jsonl"
    lines = ['"known"', '{"id": "ada", "name": "Ada", "topics": ["news"]}', "", '{"id": "bob"}', '"nobody"']
    path.write_text("\n".join(lines) + "\n")

    done = await tidings("push", "--file", str(path), "--title", "Hi", "--body", "b", "--channels", "stream", "--json")
    assert done.status == 0, done.stderr
    summary = json.loads(done.stdout)
    assert (summary["ids"], summary["recipients"], summary["unknown"]) == (4, 3, ["nobody"])
    ada = await tidings.api.get("/v1/subscribers/ada")
    assert ada.body["name"] == "Ada" and ada.body["topics"] == ["news"]

    path.write_text('"known"\n{"id": "eve", "nmae": "Eve"}\n')
    done = await tidings("push", "--file", str(path), "--body", "b")
    assert done.status == 2
    assert "line 2: `nmae` is not a subscriber field" in done.stderr


async def test_a_terminal_gets_a_progress_bar(cli, tmp_path):
    tidings = await cli()
    ids = [f"t{i}" for i in range(500)]
    await put_subscribers(tidings.api, ids)
    path = tmp_path / "ids.csv"
    path.write_text("\n".join(ids) + "\n")
    master, slave = pty.openpty()
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tidings", "push", "--file", str(path), "--body", "b", "--batch", "100",
        stdin=slave, stdout=slave, stderr=slave, env=environment(tidings.url, ROOT_KEY),
    )  # fmt: skip
    os.close(slave)
    shown = await asyncio.get_running_loop().run_in_executor(None, read_all, master)
    assert await process.wait() == 0, shown
    plain = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", shown)
    assert "100%" in plain and "500 recipients" in plain
    assert "accepted 500 ids in 5 messages: 500 recipients" in plain


def read_all(fd: int) -> str:
    """What a pseudo-terminal's other side wrote, until it closed."""
    chunks = []
    while True:
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # EIO: closed
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(fd)
    return b"".join(chunks).decode(errors="replace")


async def test_a_bad_line_or_file_is_a_usage_error(cli, tmp_path):
    tidings = await cli()
    path = tmp_path / "ids.csv"
    path.write_text("u1\nnot an id\n")
    missing, bad = await asyncio.gather(
        tidings("push", "--file", str(tmp_path / "missing.csv"), "--body", "b"),
        tidings("push", "--file", str(path), "--body", "b"),
    )
    assert missing.status == 2 and "cannot read" in missing.stderr
    assert bad.status == 2 and "line 2: 'not an id' is not a subscriber id" in bad.stderr


async def test_a_refused_batch_stops_the_push_with_1(cli, tmp_path):
    tidings = await cli()
    path = tmp_path / "ids.csv"
    path.write_text("".join(f"u{i}\n" for i in range(30)))
    done = await tidings("push", "--file", str(path), "--body", "b", "--channels", "pigeon", "--batch", "10")
    assert done.status == 1
    assert "invalid_request (400)" in done.stderr and "refused; stopped at line 1 (0 ids accepted)" in done.stderr
    assert not (tmp_path / "ids.csv.tidings-progress").exists()
