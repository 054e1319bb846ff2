"""Run one emulator: ``python -m tidings.testing yunpian --port 9001 --latency 0.5 --failure-rate 0.1``.

What it accepted can be read from another process at ``GET /_emulator/received`` and cleared with
``POST /_emulator/reset``. ``webhooks`` runs the webhook receiver instead; ``GET /_receiver/count`` tells how many
requests it has had.

``apns`` speaks HTTP/2 without TLS (``curl --http2-prior-knowledge``) and checks provider tokens against the team's
key (``--key-file``, the ``.p8`` or its public half). ``fcm`` trusts the service account of
``--service-account-file``, or makes one, which ``GET /_emulator/service-account`` gives (private key included: an
emulator's, for tests only). Both answer ``--dead`` tokens as uninstalled apps (repeat it, or
``POST /_emulator/dead`` a JSON list).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
from pathlib import Path
from typing import Any

from aiohttp import web

from tidings.runtime.oslimits import raise_open_files
from tidings.server import new_loop

EMULATORS = ("yunpian", "twilio", "aliyun", "webpush", "webhooks", "apns", "fcm")
CREDENTIALS = {
    "yunpian": ("apikey",),
    "twilio": ("account_sid", "auth_token"),
    "aliyun": ("access_key_id", "access_key_secret"),
    "webpush": (),
    "webhooks": (),
    "apns": ("team_id", "key_id", "key_file", "topic", "environment", "min_token_interval"),
    "fcm": ("project_id", "service_account_file"),
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
    parser.add_argument("--team-id", help="the APNs team id to accept")
    parser.add_argument("--key-id", help="the APNs key id to accept")
    parser.add_argument("--key-file", help="the APNs key (.p8, or its public half) provider tokens are checked with")
    parser.add_argument("--topic", help="the app's bundle id APNs accepts")
    parser.add_argument("--environment", choices=("production", "sandbox"), help="the APNs host this plays")
    parser.add_argument(
        "--min-token-interval", type=float, help="APNs: seconds between new provider tokens (Apple: 1200)"
    )
    parser.add_argument("--project-id", help="the FCM project to accept")
    parser.add_argument("--service-account-file", help="FCM: the service account JSON to trust (else one is made)")
    parser.add_argument("--dead", action="append", default=[], help="APNs or FCM: a token of an uninstalled app")
    args = parser.parse_args(argv)
    if args.dead and args.name not in ("apns", "fcm"):
        parser.error("--dead is for the apns and fcm emulators")
    if args.name == "apns":
        missing = [name for name in ("team_id", "key_id", "key_file", "topic") if not getattr(args, name)]
        if missing:
            parser.error(f"the apns emulator needs --{missing[0].replace('_', '-')}")
    for emulator, names in CREDENTIALS.items():
        given = [name for name in names if getattr(args, name) and emulator != args.name]
        if given:
            parser.error(f"--{given[0].replace('_', '-')} is for the {emulator} emulator")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    module = importlib.import_module(f"tidings.testing.{args.name}")
    options: dict[str, Any] = {"latency": args.latency, "failure_rate": args.failure_rate, "seed": args.seed}
    options.update({name: getattr(args, name) for name in CREDENTIALS[args.name] if getattr(args, name) is not None})
    if args.dead:
        options["dead"] = args.dead
    raise_open_files()
    if args.name == "apns":
        options["public_key"] = Path(options.pop("key_file")).read_bytes()
        with contextlib.suppress(KeyboardInterrupt):
            new_loop().run_until_complete(module.serve_forever(args.host, args.port, **options))
        return
    if "service_account_file" in options:
        options["service_account"] = json.loads(Path(options.pop("service_account_file")).read_text())
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
