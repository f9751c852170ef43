"""ganforge: train, evaluate, sample and serve GANs on a CPU, offline, reproducibly."""

import importlib as _importlib
import sys as _sys
import types as _types
from typing import TYPE_CHECKING as _TYPE_CHECKING
from typing import Any as _Any

from ganforge.version import __version__

if _TYPE_CHECKING:
    from ganforge.checkpoint import load_generator
    from ganforge.config import ModelConfig, TrainConfig
    from ganforge.export import export_generator
    from ganforge.metrics import evaluate
    from ganforge.presets import PRESETS
    from ganforge.sample import interpolate, sample
    from ganforge.train import train

# Public name -> the module that defines it. They load on first use (PEP 562), so that
# `import ganforge` and `ganforge --help` stay fast: torch loads only when something needs it.
_LAZY = {
    "PRESETS": "ganforge.presets",
    "ModelConfig": "ganforge.config",
    "TrainConfig": "ganforge.config",
    "evaluate": "ganforge.metrics",
    "export_generator": "ganforge.export",
    "interpolate": "ganforge.sample",
    "load_generator": "ganforge.checkpoint",
    "sample": "ganforge.sample",
    "train": "ganforge.train",
}

__all__ = [
    "PRESETS",
    "ModelConfig",
    "TrainConfig",
    "__version__",
    "evaluate",
    "export_generator",
    "interpolate",
    "load_generator",
    "sample",
    "train",
]


def __getattr__(name: str) -> _Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'ganforge' has no attribute {name!r}")
    value = getattr(_importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


class _Package(_types.ModuleType):
    """Keeps `ganforge.sample` and `ganforge.train` the functions when their modules load later."""

    def __setattr__(self, name: str, value: _Any) -> None:
        # Importing a submodule sets it as an attribute of the package; the eager imports this
        # package once made let the functions of the same name win, and so must the lazy ones.
        if name in _LAZY and isinstance(value, _types.ModuleType):
            return
        super().__setattr__(name, value)


_sys.modules[__name__].__class__ = _Package
