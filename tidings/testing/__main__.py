"""Run one emulator: ``python -m tidings.testing yunpian --port 9001 --latency 0.5 --failure-rate 0.1``."""

from __future__ import annotations

import argparse
import importlib

from aiohttp import web

EMULATORS = ("yunpian", "twilio", "aliyun")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m tidings.testing", description=__doc__)
    parser.add_argument("name", choices=EMULATORS)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9001)
    parser.add_argument("--latency", type=float, default=0.0)
    parser.add_argument("--failure-rate", type=float, default=0.0)
    parser.add_argument("--apikey", help="the Yunpian apikey to accept")
    parser.add_argument("--account-sid", help="the Twilio Account SID to accept")
    parser.add_argument("--auth-token", help="the Twilio Auth Token to accept")
    parser.add_argument("--access-key-id", help="the Aliyun AccessKeyId to accept")
    parser.add_argument("--access-key-secret", help="the Aliyun AccessKeySecret to accept")
    args = parser.parse_args()
    module = importlib.import_module(f"tidings.testing.{args.name}")
    options = {"latency": args.latency, "failure_rate": args.failure_rate}
    for name in ("apikey", "account_sid", "auth_token", "access_key_id", "access_key_secret"):
        if getattr(args, name):
            options[name] = getattr(args, name)
    try:
        import uvloop

        loop = uvloop.new_event_loop()
    except ImportError:
        loop = None
    web.run_app(
        module.create_app(**options),
        host=args.host,
        port=args.port,
        loop=loop,
        access_log=None,
        print=None,
        backlog=8192,
    )


main()
