"""torch-fidelity (0.4.0) for the parity tests and bench/inception_parity.py, imported beside a stand-in `torchvision`.

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
    return importlib.import_module("torch_fidelity")
