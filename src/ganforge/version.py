"""The package version, kept apart so that metadata writers need not import torch."""

__version__ = "0.1.0"
