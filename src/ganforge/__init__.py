"""ganforge: train, evaluate, sample and serve GANs on a CPU, offline, reproducibly."""

from ganforge.checkpoint import load_generator
from ganforge.config import PRESETS, ModelConfig, TrainConfig
from ganforge.metrics import evaluate
from ganforge.sample import interpolate, sample
from ganforge.train import train
from ganforge.version import __version__

__all__ = [
    "PRESETS",
    "ModelConfig",
    "TrainConfig",
    "__version__",
    "evaluate",
    "interpolate",
    "load_generator",
    "sample",
    "train",
]
