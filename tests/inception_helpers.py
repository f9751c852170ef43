"""Inception parity helpers: seeded random weights, test images, torch-fidelity (0.4.0) beside a stub `torchvision`.

The torchvision wheels reachable here are CUDA builds that fail to import beside the CPU torch. torch-fidelity's
InceptionV3 extractor and its FID, KID and IS code use no torchvision, but its package imports it at load time:
`torchvision.datasets` (CIFAR10, STL10, CIFAR100 as base classes of its data set wrappers),
`torchvision.transforms(.functional)` and `torchvision.models` (for its VGG16, CLIP and DINOv2 extractors, which
these checks never build). So a stub module with those names stands in for `torchvision`, only where no working
torchvision is installed; anything of it that torch-fidelity touched at run time would raise AttributeError.
"""

from __future__ import annotations

import importlib
import sys
import types

import torch


def _stub_torchvision() -> None:
    root = types.ModuleType("torchvision")
    root.__path__ = []  # a package, so `import torchvision.x` looks in sys.modules
    datasets = types.ModuleType("torchvision.datasets")
    for name in ("CIFAR10", "CIFAR100", "STL10"):
        setattr(datasets, name, type(name, (), {}))
    transforms = types.ModuleType("torchvision.transforms")
    transforms.__path__ = []
    functional = types.ModuleType("torchvision.transforms.functional")
    models = types.ModuleType("torchvision.models")
    transforms.functional = functional
    root.datasets, root.transforms, root.models = datasets, transforms, models
    root.__version__ = "0.0.0+ganforge-test-stub"
    for module in (root, datasets, transforms, functional, models):
        sys.modules[module.__name__] = module


def import_torch_fidelity() -> types.ModuleType:
    """torch_fidelity, with the stub in place of torchvision when the real one is absent or does not import."""
    if "torch_fidelity" in sys.modules:
        return sys.modules["torch_fidelity"]
    try:
        importlib.import_module("torchvision")
    except Exception:  # ImportError, or the RuntimeError of a CUDA build beside the CPU torch
        for name in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
            del sys.modules[name]
        _stub_torchvision()
    try:
        return importlib.import_module("torch_fidelity")
    except ModuleNotFoundError:  # not in the dev extra (it pulls a torchvision that breaks this torch): .ci/run has it
        import pytest

        pytest.skip("needs torch-fidelity: pip install --no-deps torch-fidelity==0.4.0 (as .ci/run does)")


def random_inception_state(seed: int) -> dict[str, torch.Tensor]:
    """Seeded random weights for the FID Inception network, scaled so that features and logits stay O(1).

    He-normal convolutions; BatchNorm scales in [0.5, 1.5), small shifts and means, variances in [0.5, 1.5);
    a classifier whose rows sum to 0, and an N(0, 1) bias. The real weights cannot be downloaded here; parity
    needs only the same numbers on both sides.
    """
    from ganforge.metrics.inception import InceptionV3

    rng = torch.Generator().manual_seed(seed)
    state = {}
    for key, value in InceptionV3().state_dict().items():
        shape = value.shape
        if key.endswith("num_batches_tracked"):
            state[key] = value.clone()
        elif key.endswith(("running_var", "bn.weight")):
            state[key] = torch.rand(shape, generator=rng) + 0.5
        elif key.endswith(("running_mean", "bn.bias")):
            state[key] = torch.randn(shape, generator=rng) * 0.1
        elif value.ndim == 4:
            state[key] = torch.randn(shape, generator=rng) * (2 / value[0].numel()) ** 0.5
        elif key == "fc.weight":
            # Rows summing to 0: the logits then follow how images differ, not the features' common positive
            # level, which would read every image as one class (IS 1.00, nothing to compare).
            weight = torch.randn(shape, generator=rng)
            state[key] = (weight - weight.mean(dim=1, keepdim=True)) * 0.3
        elif key == "fc.bias":  # IS reads the logits without it: with N(0, 1) a mix-up moves IS ~1%, 10x the tolerance
            state[key] = torch.randn(shape, generator=rng)
        else:
            state[key] = torch.randn(shape, generator=rng) * 0.1
    return state


def synthetic_images(kind: str, n: int, seed: int, background: float) -> torch.Tensor:
    """uint8 (n, C, S, S): grey 28x28 strokes (digit-like), or 64x64 colour boxes on a gradient, over a background."""
    rng = torch.Generator().manual_seed(seed)
    if kind == "grey28":
        x = torch.full((n, 1, 28, 28), background)
        for i in range(n):
            for _ in range(3):
                r, c = torch.randint(4, 24, (2,), generator=rng).tolist()
                h, w = torch.randint(2, 10, (2,), generator=rng).tolist()
                x[i, 0, r : r + h, c : c + w] = 0.5 + 0.5 * torch.rand((), generator=rng)
        return (x * 255).round().to(torch.uint8)
    ramp = torch.linspace(0, 1, 64)
    x = background + torch.rand(n, 3, 1, 1, generator=rng) * ramp.view(1, 1, 1, 64)
    x = x + torch.rand(n, 3, 1, 1, generator=rng) * ramp.view(1, 1, 64, 1)
    for i in range(n):
        r, c = torch.randint(0, 40, (2,), generator=rng).tolist()
        x[i, :, r : r + 24, c : c + 24] = torch.rand(3, 1, 1, generator=rng)
    return (x.clamp(0, 1) * 255).round().to(torch.uint8)
