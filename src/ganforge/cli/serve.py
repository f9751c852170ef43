"""`ganforge serve`: the HTTP API and web page for a generator, on 127.0.0.1 unless told otherwise."""

from __future__ import annotations

import argparse
import ipaddress
import json
import logging
import os
import socket

from ganforge.cli.common import add_device_arg, add_watermark_args
from ganforge.errors import ConfigError

log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "serve",
        help="serve the HTTP API and web page for a generator",
        description="Serve a generator: the web page at /, the API at /v1/* (spec at /openapi.json).",
    )
    p.add_argument(
        "generator", metavar="RUN_OR_FILE", help="a run directory, a generator.safetensors file or pretrained:NAME"
    )
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1; others need --token)")
    p.add_argument("--port", type=int, default=8000, help="port to bind (default 8000; 0 picks a free one)")
    p.add_argument(
        "--token",
        default=os.environ.get("GANFORGE_TOKEN"),
        help="every request must send 'Authorization: Bearer TOKEN' (default: $GANFORGE_TOKEN); "
        "open the page as /?token=TOKEN",
    )
    p.add_argument("--max-n", type=int, default=256, help="most images a request may ask for (default 256)")
    p.add_argument("--max-steps", type=int, default=64, help="most interpolation steps a request may ask for")
    p.add_argument(
        "--threads", type=int, default=1, help="torch threads on the CPU (default 1: the server needs the other cores)"
    )
    p.add_argument(
        "--workers", type=int, default=1, help="server processes sharing the port, each with its own copy of G"
    )
    p.add_argument(
        "--access-log", action="store_true", help="log one line a request on stderr (uvicorn's access log; off)"
    )
    add_watermark_args(p)
    add_device_arg(p)
    p.set_defaults(func=run)


def is_loopback(host: str) -> bool:
    """Whether binding `host` keeps the server on this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name: it may resolve anywhere
        return False


def run(args: argparse.Namespace) -> int:
    # 1. Check the options before loading anything.
    if not is_loopback(args.host) and not args.token:
        raise ConfigError(
            f"--host {args.host} lets other machines reach the server; pass --token TOKEN (or set GANFORGE_TOKEN) "
            "so that every request must carry it, or keep the default --host 127.0.0.1"
        )
    if not 0 <= args.port <= 65535:
        raise ConfigError(f"--port must be in 0..65535; got {args.port}")
    if args.max_n < 1 or args.max_steps < 2:
        raise ConfigError(f"--max-n must be >= 1 and --max-steps >= 2; got {args.max_n} and {args.max_steps}")
    if args.threads < 1 or args.workers < 1:
        raise ConfigError(f"--threads and --workers must be at least 1; got {args.threads} and {args.workers}")

    try:
        import uvicorn
        from uvicorn.supervisors import Multiprocess
    except ModuleNotFoundError as e:
        raise ConfigError(
            f"the server needs the 'serve' extra ({e.name} is missing); pip install 'ganforge[serve]'"
        ) from e
    from ganforge.device import resolve_device
    from ganforge.serve.worker import SETTINGS_VAR, build_app
    from ganforge.watermark_keys import resolve_key

    # The key is resolved (and a per-user key made) once, here, not in every worker; they get its path.
    if args.no_watermark and args.key_file:
        raise ConfigError("--no-watermark and --key-file contradict each other; pass one of them")
    key_file = None if args.no_watermark else resolve_key(args.key_file)[1]

    # 2. Load the model once; the app holds it. Worker processes rebuild it from the same settings.
    settings = {
        "generator": str(args.generator), "token": args.token, "max_n": args.max_n, "max_steps": args.max_steps,
        "threads": args.threads, "device": str(resolve_device(args.device)),
        "watermark": key_file is not None, "key_file": None if key_file is None else str(key_file),
    }  # fmt: skip
    app, G = build_app(settings)

    # 3. Bind here, so that a taken port is a user error and --port 0 can say which port it got.
    family = socket.AF_INET6 if ":" in args.host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((args.host, args.port))
        except OSError as e:
            raise ConfigError(
                f"cannot bind {args.host}:{args.port} ({e.strerror}); pick another --host or --port"
            ) from e
        sock.listen(2048)  # connections made from here on wait for the server instead of being refused
        port = sock.getsockname()[1]
        url_host = f"[{args.host}]" if family == socket.AF_INET6 else args.host
        log.info("serving %s (sha256 %s) on http://%s:%d/", args.generator, G.sha256[:12], url_host, port)
        # uvicorn logs its access lines at INFO, so the access log needs that level.
        logging_options = {"log_level": "info" if args.access_log else "warning", "access_log": args.access_log}
        if args.workers == 1:
            uvicorn.Server(uvicorn.Config(app, **logging_options)).run(sockets=[sock])
            return 0
        # Several processes: each worker imports the factory and loads G itself (spawned, not forked).
        os.environ[SETTINGS_VAR] = json.dumps(settings)
        config = uvicorn.Config(
            "ganforge.serve.worker:app_from_env", factory=True, workers=args.workers, **logging_options
        )
        Multiprocess(config, sockets=[sock]).run()
    return 0
