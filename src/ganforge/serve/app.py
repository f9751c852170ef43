"""The HTTP API and web page for one generator: `make_app(G)` returns a FastAPI app.

Endpoints: GET|HEAD /healthz, GET /v1/model, POST /v1/generate, POST /v1/interpolate, POST
/v1/project (image models; serve/projection.py), GET /openapi.json, and the page at / (with
/static/* and /favicon.ico). Errors are JSON
`{"error": code, "message": text}`; bad input is a 4xx, never a 500. With a token, every request
but the page's own files and /healthz (which reveals nothing, and load balancers probe it) must
send `Authorization: Bearer TOKEN`; the page reads it once from `/?token=TOKEN` into sessionStorage.
Swagger's /docs is off: it loads its scripts from a CDN, and the server works offline.
"""

from __future__ import annotations

import base64
import contextlib
import importlib.resources
import inspect
import io
import json
import logging
import zipfile
from collections.abc import AsyncIterator, Callable
from dataclasses import asdict, dataclass
from typing import Any, Literal

import torch
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, field_validator
from starlette.exceptions import HTTPException as StarletteHTTPException
from torch import Tensor

from ganforge.errors import ConfigError, GanforgeError
from ganforge.images import grid_nrow, is_points, make_grid, png_bytes, provenance, to_uint8, toy_scatter_bytes
from ganforge.marking import Marker, WatermarkSetting, make_marker
from ganforge.models import Generator
from ganforge.sample import MAX_SEED, class_labels, class_text, generator_modes, latents, slerp
from ganforge.serve import projection
from ganforge.serve.batching import MicroBatcher
from ganforge.serve.guard import Guard
from ganforge.version import __version__

log = logging.getLogger(__name__)

Format = Literal["grid", "zip", "json", "scatter"]
STATIC_FILES = {
    "index.html": "text/html", "app.js": "text/javascript", "style.css": "text/css", "favicon.svg": "image/svg+xml",
}  # fmt: skip
_IMAGE_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "A PNG grid (format=grid), a zip of PNGs (zip), JSON with base64 PNGs (json), "
        "or for a 2-D (toy) model a PNG scatter plot of the points over the data's modes (scatter)",
        "content": {"image/png": {}, "application/zip": {}, "application/json": {}},
    }
}


def _error(status: int, code: str, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": code, "message": message, **extra}, status_code=status)


def _request_models(num_classes: int, max_n: int, max_steps: int) -> tuple[type[BaseModel], type[BaseModel]]:
    """Request bodies with this app's limits, so that the OpenAPI spec states them."""

    if num_classes:
        class_help = f"class for this conditional model, 0..{num_classes - 1}; leave out to cycle through them"
    else:
        class_help = "this model is unconditional: leave out (or null)"

    def check_class(value: int | None) -> int | None:
        if value is None:
            return value
        if num_classes == 0:
            raise ValueError(f"this generator is unconditional; drop the class (got {value})")
        if not 0 <= value < num_classes:
            raise ValueError(f"class must be in 0..{num_classes - 1}; got {value}")
        return value

    class _Common(BaseModel):
        model_config = ConfigDict(strict=True, extra="forbid")

        truncation: float = Field(1.0, gt=0, le=1, allow_inf_nan=False, description="psi: scales the latents")
        class_: int | None = Field(None, alias="class", description=class_help)
        format: Format = Field(
            "grid",
            description="grid: one PNG; zip: one PNG an image; json: base64 PNGs; "
            "scatter: a PNG plot of a 2-D (toy) model's points",
        )

        _check_class = field_validator("class_")(check_class)

    class GenerateRequest(_Common):
        """Draw n images for a seed: image i of seed s is the same for any n."""

        n: int = Field(16, ge=1, le=max_n, description="number of images")
        seed: int = Field(0, ge=0, le=MAX_SEED)

    class InterpolateRequest(_Common):
        """Images along the great circle between the latents of two seeds."""

        seed_a: int = Field(0, ge=0, le=MAX_SEED)
        seed_b: int = Field(1, ge=0, le=MAX_SEED)
        steps: int = Field(16, ge=2, le=max_steps, description="number of frames, both ends included")

    return GenerateRequest, InterpolateRequest


def _validation_message(errors: list[dict[str, Any]]) -> tuple[str, list[dict[str, Any]]]:
    """One readable line from pydantic's errors, and a JSON-safe copy of them."""
    parts, detail = [], []
    for e in errors:
        loc = [str(x) for x in e.get("loc", ()) if x != "body"]
        kind = str(e.get("type", ""))
        msg = str(e.get("msg", "invalid"))
        if kind == "json_invalid":
            msg = f"malformed JSON ({e.get('ctx', {}).get('error', 'cannot parse')}); send a JSON object like {{}}"
            loc = []
        elif kind == "missing" and not loc:
            msg = "the request needs a JSON object body, e.g. {}"
        elif kind == "model_attributes_type" and not loc:
            msg = "the body must be a JSON object such as {}, sent with 'Content-Type: application/json'"
        elif kind == "extra_forbidden":
            msg = "unknown field; see /openapi.json for the fields"
        field = ".".join(loc).replace("class_", "class")
        parts.append(f"{field}: {msg}" if field else msg)
        detail.append({"loc": ["body", *loc], "type": kind, "msg": msg})
    return "; ".join(parts) or "invalid request", detail


@dataclass(frozen=True)
class _Output:
    """What a request wants besides its images: the format, a file name, provenance and echoed fields."""

    fmt: Format
    name: str  # file stem: seed7, interp1-2
    seed: int  # the seed in the provenance chunks (seed_a for an interpolation)
    truncation: float
    label: str | None  # the class as provenance records it: "3", "cycle", or None (unconditional)
    classes: list[int] | None  # each image's class, for single images' provenance
    extra_text: dict[str, str]  # more PNG text chunks: the interpolation path
    meta: dict[str, Any]  # echoed in the JSON reply
    nrow: int | None = None


def _encode(G: Generator, images: Tensor, out: _Output, marker: Marker) -> bytes:
    """On the worker thread: images (N, C, H, W) -> the reply's body; every PNG has provenance chunks.

    Images are watermarked one by one (a grid's tiles before tiling), as `ganforge sample` does.
    """
    mark_text = {} if is_points(G.cfg.shape) else marker.text(*G.cfg.shape[1:])

    def text(index: int | str, label: str | int | None = out.label, nrow: int | None = None) -> dict[str, str]:
        return provenance(
            generator_sha256=G.sha256, seed=out.seed, index=index, truncation=out.truncation, label=label,
            nrow=nrow, extra=out.extra_text | mark_text,
        )  # fmt: skip

    n = images.size(0)
    if out.fmt == "scatter":
        extra = {"ganforge:plot": "scatter of 2-D points"}
        body = text(f"0-{n - 1}") | extra
        seed_b = out.extra_text.get("ganforge:seed_b")
        title = f"seed {out.seed}" + (f" to seed {seed_b}" if seed_b else "")  # as `ganforge sample` titles it
        return toy_scatter_bytes(images.reshape(n, 2), generator_modes(G), body, title=title)
    pixels = marker.apply(to_uint8(images))
    if out.fmt == "grid":
        nrow = grid_nrow(n, out.nrow)
        return png_bytes(make_grid(pixels, nrow=nrow), text(f"0-{n - 1}", nrow=nrow))
    labels: list[int] | list[None] = out.classes or [None] * n
    pngs = [png_bytes(one, text(i, labels[i])) for i, one in enumerate(pixels)]
    if out.fmt == "zip":
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as archive:  # PNGs are compressed already
            for i, png in enumerate(pngs):
                # A fixed date keeps the archive's bytes the same for the same request.
                archive.writestr(zipfile.ZipInfo(f"{out.name}_{i:05d}.png", (1980, 1, 1, 0, 0, 0)), png)
        return buf.getvalue()
    return json.dumps({**out.meta, "images": [base64.b64encode(p).decode("ascii") for p in pngs]}).encode()


def _static_files() -> dict[str, bytes]:
    folder = importlib.resources.files("ganforge.serve") / "static"
    return {name: (folder / name).read_bytes() for name in STATIC_FILES}


def make_app(
    G: Generator,
    *,
    token: str | None = None,
    max_n: int = 256,
    max_steps: int = 64,
    max_body_bytes: int = 16_384,
    max_image_bytes: int = 1_048_576,
    max_project_steps: int = 500,
    batching: bool | None = None,
    watermark: WatermarkSetting = True,
    model_card: str | None = None,
) -> FastAPI:
    """The API and web page for generator G (from `load_generator`), loaded once by the caller.

    Args:
        token: when set, every request but the page's files needs `Authorization: Bearer TOKEN`.
        batching: None checks at startup that batching keeps results bit-identical; False turns it off.
        watermark: True marks every image with the default key (GANFORGE_KEY_FILE or the per-user key),
            bytes with that key, False not at all (the provenance says which).
        model_card: the run's MODEL_CARD.md text, returned by /v1/model and shown on the page (None: no card).
        max_image_bytes: the largest image file POST /v1/project takes.
        max_project_steps: the most Adam steps a POST /v1/project may ask for.

    Example:
        >>> uvicorn.run(make_app(ganforge.load_generator("runs/seed")), host="127.0.0.1", port=8000)
    """
    if max_n < 1 or max_steps < 2 or max_body_bytes < 64:
        raise ConfigError(
            f"limits must be max_n >= 1, max_steps >= 2, max_body_bytes >= 64; "
            f"got {max_n}, {max_steps}, {max_body_bytes}"
        )
    cfg = G.cfg
    marker = make_marker(watermark, G.sha256)
    batcher = MicroBatcher(G, max_rows=max(max_n, max_steps, 256), batching=batching)
    log.debug("serving generator %s; batching %s", G.sha256, batcher.batching)
    static = _static_files()
    GenerateRequest, InterpolateRequest = _request_models(cfg.num_classes, max_n, max_steps)
    media = {"grid": "image/png", "zip": "application/zip", "json": "application/json", "scatter": "image/png"}

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        batcher.close()

    app = FastAPI(
        title="ganforge",
        version=__version__,
        description="Images from a trained GAN generator. Same seed, same images. Every PNG carries provenance.",
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
        **_no_telemetry(),
    )
    points = is_points(cfg.shape)
    path_limits = {} if points else {projection.PATH: max(max_body_bytes, projection.body_limit(max_image_bytes))}
    app.add_middleware(Guard, token=token, max_body_bytes=max_body_bytes, path_limits=path_limits)

    @app.exception_handler(RequestValidationError)
    async def on_validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        message, detail = _validation_message(list(exc.errors()))
        return _error(422, "invalid_request", message, detail=detail)

    @app.exception_handler(GanforgeError)
    async def on_ganforge_error(request: Request, exc: GanforgeError) -> JSONResponse:
        return _error(422, "invalid_request", str(exc))

    @app.exception_handler(StarletteHTTPException)
    async def on_http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        response = _error(exc.status_code, code, str(exc.detail))
        response.headers.update(exc.headers or {})
        return response

    async def respond(z: Tensor, labels: Tensor | None, out: _Output) -> Response:
        if out.fmt == "scatter" and not points:
            raise ConfigError("format 'scatter' is for 2-D (toy) models; use grid, zip or json")
        body = await batcher.generate(z, labels, post=lambda images: _encode(G, images, out, marker))
        headers = {"Content-Disposition": f'attachment; filename="{out.name}.zip"'} if out.fmt == "zip" else None
        return Response(body, media_type=media[out.fmt], headers=headers)

    def output(req: Any, labels: Tensor | None, name: str, seed: int, meta: dict[str, Any], **more: Any) -> _Output:
        classes = None if labels is None else [int(c) for c in labels.tolist()]
        label = class_text(G, req.class_)
        return _Output(req.format, name, seed, req.truncation, label, classes, meta=meta, **more)

    async def generate(req: Any) -> Response:
        labels = class_labels(G, req.n, req.class_)
        z = latents(req.n, cfg.z_dim, seed=req.seed, truncation=req.truncation)
        meta = {"seed": req.seed, "n": req.n, "truncation": req.truncation, "class": req.class_}
        return await respond(z, labels, output(req, labels, f"seed{req.seed}", req.seed, meta, extra_text={}))

    async def interpolate(req: Any) -> Response:
        labels = class_labels(G, req.steps, req.class_)
        z_a = latents(1, cfg.z_dim, seed=req.seed_a, truncation=req.truncation)[0]
        z_b = latents(1, cfg.z_dim, seed=req.seed_b, truncation=req.truncation)[0]
        z = slerp(z_a, z_b, torch.linspace(0, 1, req.steps))
        path = f"slerp from seed {req.seed_a} to seed {req.seed_b} in {req.steps} steps"
        extra = {"ganforge:interpolation": path, "ganforge:seed_b": str(req.seed_b)}
        meta = {"seed_a": req.seed_a, "seed_b": req.seed_b, "steps": req.steps, "truncation": req.truncation}
        meta["class"] = req.class_
        name = f"interp{req.seed_a}-{req.seed_b}"
        return await respond(z, labels, output(req, labels, name, req.seed_a, meta, extra_text=extra, nrow=req.steps))

    # FastAPI reads the body type from the annotation; these models are built per app, so set it here.
    _route(app, "/v1/generate", generate, GenerateRequest, "Generate images for a seed")
    _route(app, "/v1/interpolate", interpolate, InterpolateRequest, "Interpolate between two seeds")
    if not points:  # a 2-D model makes points: there is no image to find
        projection.add_projection_route(
            app, G, marker=marker, max_image_bytes=max_image_bytes, max_steps=max_project_steps
        )

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        """Liveness: always open, even with a token (it reveals nothing); HEAD answers 200 too."""
        return {"status": "ok"}

    # Load balancers often probe with HEAD; one route for both methods would share an OpenAPI operation id.
    app.add_api_route("/healthz", healthz, methods=["HEAD"], include_in_schema=False)

    @app.get("/v1/model")
    async def model() -> dict[str, Any]:
        """The generator's config, provenance and this server's limits."""
        return {
            "sha256": G.sha256,
            "config": asdict(cfg),
            "image_size": cfg.image_size,
            "channels": cfg.channels,
            "is_conditional": cfg.is_conditional,
            "is_points": points,
            "classes": list(range(cfg.num_classes)),
            "provenance": G.provenance,
            "limits": {
                "max_n": max_n,
                "max_steps": max_steps,
                "max_body_bytes": max_body_bytes,
                "max_image_bytes": max_image_bytes,
                "max_project_steps": max_project_steps,
            },  # fmt: skip
            "can_project": not points,
            "batching": batcher.batching,
            "ganforge_version": __version__,
            "model_card": model_card,  # Markdown, or null when the generator has no run directory with a card
        }

    @app.get("/", include_in_schema=False)
    async def index() -> Response:
        return Response(static["index.html"], media_type="text/html; charset=utf-8")

    @app.get("/favicon.ico", include_in_schema=False)
    async def favicon() -> Response:
        # Browsers ask for /favicon.ico whatever the page says; answer it rather than log a 404.
        return Response(static["favicon.svg"], media_type="image/svg+xml")

    @app.get("/static/{name}", include_in_schema=False)
    async def static_file(name: str) -> Response:
        if name not in static:
            return _error(404, "not_found", f"no static file {name!r}")
        return Response(static[name], media_type=f"{STATIC_FILES[name]}; charset=utf-8")

    return app


def _no_telemetry() -> dict[str, Any]:
    """FastAPI >= 0.16x checks for OpenTelemetry on every request (~3% here); we export none."""
    if "telemetry" in inspect.signature(FastAPI).parameters:
        return {"telemetry": {"tracing": False, "metrics": False, "logs": False}}
    return {}


def _route(app: FastAPI, path: str, endpoint: Callable[..., Any], body: type[BaseModel], summary: str) -> None:
    endpoint.__annotations__ = {"req": body, "return": Response}
    app.add_api_route(path, endpoint, methods=["POST"], summary=summary, responses=_IMAGE_RESPONSES)
