"""An app factory for server worker processes: each loads the generator itself from its settings.

`ganforge serve --workers N` binds the socket once and starts N processes (spawned, not forked,
so no torch thread pool is copied); uvicorn imports `app_from_env` in each, and this rebuilds the
same app from the settings the parent put in GANFORGE_SERVE_SETTINGS.
"""

from __future__ import annotations

import json
import os
from typing import Any

import torch
from fastapi import FastAPI

from ganforge.checkpoint import load_generator, resolve_generator_path
from ganforge.device import resolve_device
from ganforge.model_card import read_model_card
from ganforge.models import Generator
from ganforge.serve.app import make_app
from ganforge.watermark_keys import resolve_key

SETTINGS_VAR = "GANFORGE_SERVE_SETTINGS"


def build_app(settings: dict[str, Any]) -> tuple[FastAPI, Generator]:
    """Set the torch threads, load G once and make its app: in `ganforge serve` and in each worker."""
    device = resolve_device(settings["device"])
    if device.type == "cpu":
        torch.set_num_threads(settings["threads"])
    G = load_generator(settings["generator"], device=device)
    # The settings name the key's file, never the key: they travel to the workers in the environment.
    watermark = resolve_key(settings.get("key_file"))[0] if settings.get("watermark", True) else False
    # The card beside the generator file (pretrained:NAME resolves into the package, which holds none).
    card = read_model_card(resolve_generator_path(settings["generator"]))
    app = make_app(G, token=settings["token"], max_n=settings["max_n"], max_steps=settings["max_steps"],
                   watermark=watermark, model_card=card)  # fmt: skip
    return app, G


def app_from_env() -> FastAPI:
    """Build the app in a worker process from SETTINGS_VAR (JSON of the `build_app` settings)."""
    return build_app(json.loads(os.environ[SETTINGS_VAR]))[0]
