"""POST /v1/project: an uploaded image (base64 in JSON) -> the latent, class and reconstruction closest to it."""

from __future__ import annotations

import asyncio
import base64
import binascii
import math
from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from ganforge.errors import ConfigError, DataError
from ganforge.images import png_bytes, provenance, to_uint8
from ganforge.marking import Marker
from ganforge.metrics.extractors import Extractor
from ganforge.models import Generator
from ganforge.project import DEFAULT_STEPS, extractor_for, project, read_images
from ganforge.sample import MAX_SEED

PATH = "/v1/project"
DATA_URL = "data:"


def body_limit(max_image_bytes: int) -> int:
    """The largest JSON body /v1/project accepts: the image in base64 (4 characters a 3 bytes) and the fields."""
    return math.ceil(max_image_bytes / 3) * 4 + 4096


def _request_model(num_classes: int, max_steps: int) -> type[BaseModel]:
    class ProjectRequest(BaseModel):
        """An image to find in the latent space; base64 of its file (PNG, JPEG, WebP), or a data: URL."""

        model_config = ConfigDict(strict=True, extra="forbid")

        image: str = Field(description="base64 of a PNG/JPEG/WebP file, or a data:image/...;base64, URL")
        class_: int | None = Field(
            None,
            alias="class",
            ge=0,
            le=max(0, num_classes - 1),
            description="fix the class of a conditional model; leave out to let the projection pick it"
            if num_classes
            else "this model is unconditional: leave out (or null)",
        )
        steps: int = Field(DEFAULT_STEPS, ge=4, le=max_steps, description="Adam steps")
        seed: int = Field(0, ge=0, le=MAX_SEED, description="seed of the random starts")

    return ProjectRequest


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": code, "message": message}, status_code=status)


def _decode_base64(text: str, max_image_bytes: int) -> bytes | JSONResponse:
    """The image file's bytes from base64 (or a data: URL), or the 4xx reply that says what is wrong."""
    if text.startswith(DATA_URL):
        head, _, text = text.partition(",")
        if not head.endswith(";base64"):
            return _error(422, "invalid_image", "a data: URL image must be base64 (data:image/png;base64,...)")
    if len(text) > body_limit(max_image_bytes):
        return _error(413, "image_too_large", f"the image is over {max_image_bytes} bytes; send a smaller file")
    try:
        data = base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError):
        return _error(422, "invalid_image", "image is not valid base64; send the file's bytes in base64")
    if len(data) > max_image_bytes:
        return _error(413, "image_too_large", f"the image is {len(data)} bytes, over {max_image_bytes}; send less")
    if not data:
        return _error(422, "invalid_image", "image is empty; send a PNG, JPEG or WebP file in base64")
    return data


def add_projection_route(app: FastAPI, G: Generator, *, marker: Marker, max_image_bytes: int, max_steps: int) -> None:
    """Add POST /v1/project to the app: one projection at a time, on a worker thread."""
    if max_steps < 4 or max_image_bytes < 64:
        raise ConfigError(
            f"projection limits must be steps >= 4, image bytes >= 64; got {max_steps}, {max_image_bytes}"
        )
    ProjectRequest = _request_model(G.cfg.num_classes, max_steps)
    lock = asyncio.Lock()  # a projection takes ~a second of CPU: one at a time, the rest wait their turn
    extractors: dict[str, Extractor | None] = {}

    def work(data: bytes, label: int | None, steps: int, seed: int) -> dict[str, Any]:
        if "x" not in extractors:  # loaded (and hash-checked) once, on the first request
            extractors["x"] = extractor_for(G)
        targets = read_images([data], G.cfg.shape)
        result = project(G, targets, steps=steps, label=label, seed=seed, extractor=extractors["x"])
        one = None if result.labels is None else int(result.labels[0])
        pixels = marker.apply(to_uint8(result.images))  # a generated image: marked as /v1/generate's are
        extra = {"ganforge:projection": f"projected from an uploaded image, {steps} steps"}
        extra |= marker.text(*pixels.shape[1:3])
        text = provenance(generator_sha256=G.sha256, seed=seed, index=0, label=one, extra=extra)
        cosine = None if result.feature_cosine is None else float(result.feature_cosine[0])
        return {
            "latent": [float(v) for v in result.z[0].tolist()], "class": one,
            "image": base64.b64encode(png_bytes(pixels[0], text)).decode("ascii"),
            "input": base64.b64encode(png_bytes(to_uint8(result.targets)[0])).decode("ascii"),
            "pixel_mse": float(result.pixel_mse[0]), "feature_cosine": cosine, "extractor": result.extractor,
            "steps": steps, "seed": seed,
        }  # fmt: skip

    async def project_image(req: Any) -> Any:
        data = _decode_base64(req.image, max_image_bytes)
        if isinstance(data, JSONResponse):
            return data
        if req.class_ is not None and G.cfg.num_classes == 0:
            return _error(422, "invalid_request", f"class: this generator is unconditional; drop it (got {req.class_})")
        async with lock:
            try:
                return await run_in_threadpool(work, data, req.class_, req.steps, req.seed)
            except DataError as e:
                return _error(422, "invalid_image", str(e))

    project_image.__annotations__ = {"req": ProjectRequest, "return": dict[str, Any]}
    app.add_api_route(
        PATH,
        project_image,
        methods=["POST"],
        summary="Find an image in the latent space",
        description="Returns the latent (`latent`, z_dim floats), the class, the reconstruction (`image`, base64 PNG), "
        "the input as projected (`input`: at the model's size and channels) and their distances.",
    )
