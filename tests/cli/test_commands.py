"""The ``tidings`` commands against a real server: what they print, for people and with ``--json``, and their
exit statuses (API.md, "Faces": 0 done, 1 refused, 2 usage)."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import subprocess
import sys

from aiohttp import web

from tests.cli.conftest import finish
from tests.conftest import free_port
from tests.helpers import TEST_CODE, TEST_NUMBER, finished


async def test_a_key_made_with_the_cli_is_used_and_revoked_with_it(cli):
    tidings = await cli()
    done = await tidings("keys", "create", "ci", "--scopes", "send", "--json")
    assert done.status == 0, done.stderr
    made = json.loads(done.stdout)
    assert made["scopes"] == ["send"] and made["key"].startswith("tk_")

    sent = await tidings("verify", "send", TEST_NUMBER, "--json", key=made["key"])
    assert sent.status == 0, sent.stderr
    assert json.loads(sent.stdout)["status"] == "pending"

    status, listed = await asyncio.gather(tidings("status", key=made["key"]), tidings("--json", "keys", "list"))
    assert status.status == 1
    assert "insufficient_scope (403)" in status.stderr and "lacks the `read` scope" in status.stderr
    assert made["id"] in [json.loads(line)["id"] for line in listed.stdout.splitlines()]

    revoked = await tidings("keys", "revoke", made["id"])
    assert revoked.status == 0 and f"revoked: {made['id']}" in revoked.stdout
    refused = await tidings("verify", "send", TEST_NUMBER, key=made["key"])
    assert refused.status == 1
    assert "(401)" in refused.stderr and "hint: check --key / TIDINGS_API_KEY" in refused.stderr


async def test_a_new_key_is_printed_once_on_a_line_of_its_own(cli):
    tidings = await cli()
    done = await tidings("keys", "create", "backend", "--scopes", "send,read")
    assert done.status == 0, done.stderr
    key = next(line.strip() for line in done.stdout.splitlines() if line.strip().startswith("tk_"))
    assert "shown only this once" in done.stdout
    assert (await tidings("--json", "status", key=key)).status == 0


async def test_verify_send_then_check_a_wrong_and_a_right_code(cli):
    tidings = await cli()
    sent = await tidings("verify", "send", TEST_NUMBER)
    assert sent.status == 0, sent.stderr
    assert "pending" in sent.stdout and TEST_NUMBER in sent.stdout

    wrong = await tidings("verify", "check", TEST_NUMBER, "000000")
    assert wrong.status == 1 and "wrong code: 4 attempts left" in wrong.stdout
    right = await tidings("verify", "check", TEST_NUMBER, TEST_CODE, "--json")
    assert right.status == 0
    check = json.loads(right.stdout)
    assert check["valid"] is True and check["status"] == "approved"

    again, got = await asyncio.gather(
        tidings("verify", "check", TEST_NUMBER, TEST_CODE), tidings("verify", "get", check["id"], "--json")
    )
    assert again.status == 1
    assert "verification_approved (404)" in again.stderr and "hint: its code was already used" in again.stderr
    assert json.loads(got.stdout)["status"] == "approved"


async def test_a_rate_limit_says_when_to_retry(cli):
    tidings = await cli()
    assert (await tidings("verify", "send", "+447700900123")).status == 0
    again = await tidings("verify", "send", "+447700900123")
    assert again.status == 1
    assert "rate_limited (429)" in again.stderr and re.search(r"hint: retry after (29|30) s", again.stderr)


async def test_verify_check_by_id_and_cancel(cli):
    tidings = await cli()
    verification = json.loads((await tidings("--json", "verify", "send", TEST_NUMBER)).stdout)
    wrong = await tidings("verify", "check", "--id", verification["id"], "999999", "--json")
    assert wrong.status == 1 and json.loads(wrong.stdout)["valid"] is False
    canceled = await tidings("verify", "cancel", verification["id"], "--json")
    assert canceled.status == 0 and json.loads(canceled.stdout)["status"] == "canceled"
    late = await tidings("verify", "check", "--id", verification["id"], TEST_CODE, "--json")
    assert late.status == 1
    assert json.loads(late.stdout)["error"]["code"] == "verification_canceled"  # the API's error, for scripts


async def test_usage_errors_exit_2_without_a_traceback(cli):
    tidings = await cli()
    cases = [
        ("push", "--to", "u1", "--data", "[1,"),
        ("push", "--to", "u1", "--data", "[1]"),
        ("push", "--to", "u1", "--topic", "news"),
        ("verify", "check", TEST_NUMBER),
        ("verify", "check", "--id", "ver_x", TEST_NUMBER, TEST_CODE),
        ("keys", "create", "x", "--scopes", "write"),
        ("subscribers", "put", "ada", "--body", '{"nmae": "Ada"}'),
        ("verify",),
        (),
    ]
    for args, done in zip(cases, await asyncio.gather(*(tidings(*args) for args in cases)), strict=True):
        assert done.status == 2, (args, done.stdout, done.stderr)
        assert done.stderr and not done.stdout, args


async def test_no_server_says_how_to_start_one():
    url = f"http://127.0.0.1:{free_port()}"
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tidings", "--url", url, "verify", "get", "ver_x",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    done = await finish(process)
    assert done.status == 1
    assert f"is tidings running at {url}? start it with `tidings serve`" in done.stderr
    assert "Traceback" not in done.stderr


async def test_subscribers_put_get_token_list_delete(cli):
    tidings = await cli()
    put = await tidings(
        "subscribers", "put", "ada", "--name", "Ada", "--topics", "news,sport", "--json",
        "--channel-json", '{"type": "webhook", "url": "http://127.0.0.1:9/hook"}',
    )  # fmt: skip
    assert put.status == 0, put.stderr
    ada = json.loads(put.stdout)
    assert ada["topics"] == ["news", "sport"] and ada["channels"][0]["secret"].startswith("whsec_")

    got, token, listed = await asyncio.gather(
        tidings("subscribers", "get", "ada"),
        tidings("subscribers", "token", "ada", "--json"),
        tidings("subscribers", "list", "--topic", "news", "--json"),
    )
    assert got.status == 0 and "Ada" in got.stdout and "news, sport" in got.stdout
    assert json.loads(token.stdout)["subscriber_id"] == "ada"
    assert listed.status == 0, listed.stderr
    assert [json.loads(line)["id"] for line in listed.stdout.splitlines()] == ["ada"]

    assert (await tidings("subscribers", "delete", "ada")).status == 0
    gone = await tidings("subscribers", "get", "ada")
    assert gone.status == 1 and "subscriber_not_found (404)" in gone.stderr


async def test_status_shows_the_nodes_and_queues(cli):
    tidings = await cli()
    people, machines = await asyncio.gather(tidings("status"), tidings("status", "--json"))
    assert people.status == 0 and "backend: sqlite" in people.stdout and "Nodes" in people.stdout
    cluster = json.loads(machines.stdout)
    assert cluster["backend"] == "sqlite" and len(cluster["nodes"]) == 1


async def test_tail_prints_each_message_and_ends_on_ctrl_c_with_0(cli):
    tidings = await cli()
    await tidings.api.call("PUT", "/v1/subscribers/ada", {})
    first = await tidings.api.post("/v1/messages", {"to": ["ada"], "body": "before", "channels": ["stream"]})
    tail = await tidings.start("tail", "ada", "--since", first.body["id"], "--json")
    sent = await tidings.api.post("/v1/messages", {"to": ["ada"], "title": "Hi", "body": "after", "data": {"k": 1}})
    assert tail.stdout is not None
    line = await asyncio.wait_for(tail.stdout.readline(), 20)
    event = json.loads(line)
    assert (event["id"], event["body"], event["data"]) == (sent.body["id"], "after", {"k": 1})
    tail.send_signal(signal.SIGINT)
    done = await finish(tail)
    assert done.status == 0 and "Traceback" not in done.stderr


async def test_deliveries_failed_lists_the_dead_letters(cli, run_app):
    async def refuse(request: web.Request) -> web.Response:
        return web.json_response({"error": "no"}, status=400)  # a 4xx other than 429: failed for good

    receiver = web.Application()
    receiver.router.add_post("/hook", refuse)
    hook = await run_app(receiver)
    tidings = await cli()
    await tidings.api.call("PUT", "/v1/subscribers/bob", {"channels": [{"type": "webhook", "url": f"{hook}/hook"}]})
    await tidings.api.call("PUT", "/v1/subscribers/ada", {})
    sent = await tidings.api.post("/v1/messages", {"to": ["bob", "ada"], "body": "x", "channels": ["webhook"]})
    assert (await finished(tidings.api, sent.body["id"]))["counts"]["failed"] == 1

    machines, people = await asyncio.gather(
        tidings("deliveries", "--failed", "--json"), tidings("deliveries", "--failed", "--message", sent.body["id"])
    )
    failed = [json.loads(line) for line in machines.stdout.splitlines()]
    assert [(d["message_id"], d["subscriber_id"], d["status"]) for d in failed] == [(sent.body["id"], "bob", "failed")]
    assert people.status == 0 and "Failed deliveries" in people.stdout and "bob" in people.stdout


def test_the_api_commands_load_nothing_of_the_server():
    """``tidings verify ...`` imports the client, not the server, its settings, storage or pydantic."""
    probe = (
        "import sys\nfrom tidings.cli import main\n"
        "try:\n    main(['--url', 'http://127.0.0.1:9', 'verify', 'get', 'ver_x'])\nexcept SystemExit:\n    pass\n"
        "print(' '.join(sorted(sys.modules)))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    loaded = set(done.stdout.split())
    assert "tidings.client" in loaded
    heavy = {"tidings.server", "tidings.config", "tidings.backends", "tidings.api", "tidings.wiring", "pydantic",
             "redis", "sqlite3", "cryptography"}  # fmt: skip
    assert not heavy & loaded, heavy & loaded
