"""An app factory for server worker processes: each loads the generator itself from its settings.

`ganforge serve --workers N` binds the socket once and starts N processes (spawned, not forked,
so no torch thread pool is copied); uvicorn imports `app_from_env` in each, and this rebuilds the
same app from the GANFORGE_SERVE_* variables the parent set.
"""

from __future__ import annotations

import json
import os

import torch
from fastapi import FastAPI

from ganforge.checkpoint import load_generator
from ganforge.device import resolve_device
from ganforge.serve.app import make_app

SETTINGS_VAR = "GANFORGE_SERVE_SETTINGS"


def settings_env(generator: str, *, token: str | None, max_n: int, max_steps: int, threads: int, device: str) -> str:
    """The settings a worker needs, as the JSON string the parent puts in SETTINGS_VAR."""
    return json.dumps(
        {"generator": generator, "token": token, "max_n": max_n, "max_steps": max_steps, "threads": threads,
         "device": device}
    )  # fmt: skip


def app_from_env() -> FastAPI:
    """Build the app in a worker process from SETTINGS_VAR."""
    settings = json.loads(os.environ[SETTINGS_VAR])
    device = resolve_device(settings["device"])
    if device.type == "cpu":
        torch.set_num_threads(settings["threads"])
    G = load_generator(settings["generator"], device=device)
    return make_app(G, token=settings["token"], max_n=settings["max_n"], max_steps=settings["max_steps"])
