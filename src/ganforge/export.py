"""Export a generator to ONNX or TorchScript, with the generator file's provenance in the exported file's metadata.

What is exported is what generator.safetensors holds (the EMA generator where training kept one), in eval
mode: inputs `z` (float32 (B, z_dim), N(0, 1) latents) and, for a conditional model, `class` (int64 (B,));
output `images` (float32 (B, C, H, W) in [-1, 1]; a 2-D toy model's points are passed through unclamped).
ONNX uses torch's exporter (torch.export based, opset 18); the provenance goes into `metadata_props`.
TorchScript is a trace of the same module; the provenance goes into the archive's extra file `ganforge.json`.
"""

from __future__ import annotations

import copy
import json
import logging
import warnings
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any, Literal

import torch
from torch import Tensor, nn
from torch.nn.utils import parametrize

from ganforge.checkpoint import load_generator
from ganforge.errors import ConfigError
from ganforge.io import atomic_path
from ganforge.models import Generator, build_generator
from ganforge.version import __version__

log = logging.getLogger(__name__)

FORMATS = ("onnx", "torchscript")
OPSET = 18
EXPORT_FORMAT = "ganforge.exported-generator"
TORCHSCRIPT_METADATA = "ganforge.json"  # the extra file in a TorchScript archive
ExportFormat = Literal["onnx", "torchscript"]


class _Unconditional(nn.Module):
    """z (B, z_dim) -> images (B, C, H, W) in [-1, 1]."""

    def __init__(self, G: Generator, clamp: bool) -> None:
        super().__init__()
        self.G, self.clamp = G, clamp

    def forward(self, z: Tensor) -> Tensor:
        x = self.G(z)
        return x.clamp(-1, 1) if self.clamp else x


class _Conditional(_Unconditional):
    """(z (B, z_dim), class (B,) int64) -> images (B, C, H, W) in [-1, 1]."""

    def forward(self, z: Tensor, labels: Tensor) -> Tensor:  # type: ignore[override]
        x = self.G(z, labels)
        return x.clamp(-1, 1) if self.clamp else x


def export_metadata(G: Generator, fmt: ExportFormat, batch: int | None) -> dict[str, str]:
    """String key -> string value: what the exported file records of its generator and its interface."""
    cfg = G.cfg
    inputs = f"z: float32 ({batch or 'B'}, {cfg.z_dim}) N(0, 1) latents"
    if cfg.is_conditional:
        inputs += f"; class: int64 ({batch or 'B'},) in 0..{cfg.num_classes - 1}"
    is_points = cfg.image_size == 1
    return {
        "format": EXPORT_FORMAT,
        "exported_as": fmt,
        "ganforge_version": __version__,
        "generator_sha256": str(getattr(G, "sha256", "unsaved")),
        "model_config": json.dumps(asdict(cfg), sort_keys=True),
        "provenance": json.dumps(getattr(G, "provenance", {}) or {}, sort_keys=True),
        "inputs": inputs,
        "output": f"images: float32 ({batch or 'B'}, {cfg.channels}, {cfg.image_size}, {cfg.image_size})"
        + (" 2-D points" if is_points else " in [-1, 1]"),
        "batch": "dynamic" if batch is None else str(batch),
    }


@torch.no_grad()
def _frozen_copy(G: Generator) -> Generator:
    """An eval-mode CPU copy with spectral norm baked into plain weights (what G computes in eval mode).

    A generator trained with spectral norm is rebuilt without it and given the normalised weights. Removing
    the parametrization from a deep copy instead would also strip it from the original: both share the
    parametrized class that torch builds once per module.
    """
    source = copy.deepcopy(G).cpu().eval()  # eval: reading a weight runs no power iteration
    if not any(parametrize.is_parametrized(m) for m in source.modules()):
        return source.requires_grad_(False)
    plain = build_generator(replace(G.cfg, spectral_norm_g=False)).eval()
    modules = dict(source.named_modules())
    for name, module in plain.named_modules():
        for key, tensor in [*module.named_parameters(recurse=False), *module.named_buffers(recurse=False)]:
            tensor.copy_(getattr(modules[name], key))
    return plain.requires_grad_(False)


def _example_inputs(G: Generator, batch: int) -> tuple[Tensor, ...]:
    z = torch.randn(batch, G.cfg.z_dim, generator=torch.Generator().manual_seed(0))
    if not G.cfg.is_conditional:
        return (z,)
    return (z, torch.arange(batch, dtype=torch.int64) % G.cfg.num_classes)


def _onnx_bytes(module: nn.Module, inputs: tuple[Tensor, ...], names: list[str], batch: int | None) -> Any:
    """The ONNX ModelProto of module (torch.export based exporter)."""
    dynamic = None
    if batch is None:
        dim = torch.export.Dim("batch", min=1)
        dynamic = {arg: {0: dim} for arg in (["z", "labels"] if len(names) == 2 else ["z"])}
    root = logging.getLogger("torch.onnx")
    level = root.level
    root.setLevel(logging.ERROR)  # the exporter logs each stage (and missing torchvision ops) at WARNING
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the exporter's own deprecation notices (pytree, onnxscript)
            program = torch.onnx.export(
                module,
                inputs,
                None,
                input_names=names,
                output_names=["images"],
                opset_version=OPSET,
                dynamo=True,
                dynamic_shapes=dynamic,
                verbose=False,
            )
    finally:
        root.setLevel(level)
    assert program is not None
    return program.model_proto


def export_generator(
    generator: Generator | str | Path,
    out: str | Path,
    *,
    fmt: ExportFormat = "onnx",
    batch: int | None = None,
) -> Path:
    """Write `generator` (a module, run dir or generator file) as ONNX or TorchScript to `out`, atomically.

    batch: a fixed batch size for ONNX's inputs; None (default) leaves the batch dimension dynamic.
    TorchScript modules take any batch. Returns the path written.

    Example:
        >>> export_generator("runs/mnist", "mnist.onnx", fmt="onnx")
    """
    if fmt not in FORMATS:
        raise ConfigError(f"unknown export format {fmt!r}; use one of {', '.join(FORMATS)}")
    if batch is not None and batch < 1:
        raise ConfigError(f"batch must be a positive number or 'dynamic'; got {batch}")
    if isinstance(generator, (str, Path)):
        generator = load_generator(generator)
    G = _frozen_copy(generator)
    is_points = G.cfg.image_size == 1
    module = (_Conditional if G.cfg.is_conditional else _Unconditional)(G, clamp=not is_points).eval()
    inputs = _example_inputs(G, batch or 2)
    metadata = export_metadata(generator, fmt, batch)
    out = Path(out)
    if fmt == "onnx":
        try:
            import onnx
            import onnxscript  # noqa: F401  (torch's exporter needs it)
        except ImportError as e:
            raise ConfigError(
                f"ONNX export needs the {e.name} package: pip install 'ganforge[export]' (onnx, onnxscript), "
                "or pass --format torchscript"
            ) from e

        names = ["z", "class"] if G.cfg.is_conditional else ["z"]
        proto = _onnx_bytes(module, inputs, names, batch)
        proto.producer_name, proto.producer_version = "ganforge", __version__
        onnx.helper.set_model_props(proto, metadata)
        onnx.checker.check_model(proto)
        with atomic_path(out) as tmp:
            onnx.save_model(proto, str(tmp))
    else:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r".*torch\.jit\.\w+` is deprecated", category=DeprecationWarning)
            traced = torch.jit.trace(module, inputs)
            with atomic_path(out) as tmp:
                torch.jit.save(traced, str(tmp), _extra_files={TORCHSCRIPT_METADATA: json.dumps(metadata)})
    log.info("wrote %s (%s, batch %s) of generator %s", out, fmt, batch or "dynamic", metadata["generator_sha256"][:12])
    return out
