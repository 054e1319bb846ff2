"""Run one emulator: ``python -m tidings.testing yunpian --port 9001 --latency 0.5 --failure-rate 0.1``.

What it accepted can be read from another process at ``GET /_emulator/received`` and cleared with
``POST /_emulator/reset``. ``webhooks`` runs the webhook receiver instead; ``GET /_receiver/count`` tells how many
requests it has had.
"""

from __future__ import annotations

import argparse
import importlib

from aiohttp import web

from tidings.runtime.oslimits import raise_open_files
from tidings.server import new_loop

EMULATORS = ("yunpian", "twilio", "aliyun", "webpush", "webhooks")
CREDENTIALS = {
    "yunpian": ("apikey",),
    "twilio": ("account_sid", "auth_token"),
    "aliyun": ("access_key_id", "access_key_secret"),
    "webpush": (),
    "webhooks": (),
}


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tidings.testing", description=__doc__)
    parser.add_argument("name", choices=EMULATORS)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9001)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds before each answer")
    parser.add_argument("--failure-rate", type=float, default=0.0, help="share of requests answered with an error")
    parser.add_argument("--seed", type=int, default=0, help="seed of the choice of failing requests")
    parser.add_argument("--apikey", help="the Yunpian apikey to accept")
    parser.add_argument("--account-sid", help="the Twilio Account SID to accept")
    parser.add_argument("--auth-token", help="the Twilio Auth Token to accept")
    parser.add_argument("--access-key-id", help="the Aliyun AccessKeyId to accept")
    parser.add_argument("--access-key-secret", help="the Aliyun AccessKeySecret to accept")
    args = parser.parse_args(argv)
    for emulator, names in CREDENTIALS.items():
        given = [name for name in names if getattr(args, name) and emulator != args.name]
        if given:
            parser.error(f"--{given[0].replace('_', '-')} is for the {emulator} emulator")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    module = importlib.import_module(f"tidings.testing.{args.name}")
    options = {"latency": args.latency, "failure_rate": args.failure_rate, "seed": args.seed}
    options.update({name: getattr(args, name) for name in CREDENTIALS[args.name] if getattr(args, name)})
    raise_open_files()
    web.run_app(
        module.create_app(**options),
        host=args.host,
        port=args.port,
        loop=new_loop(),
        access_log=None,
        print=None,
        backlog=8192,
    )


if __name__ == "__main__":
    main()
