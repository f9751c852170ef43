"""Exceptions for user mistakes; the CLI prints them as one line and exits with code 2."""

from __future__ import annotations


class GanforgeError(Exception):
    """Base class: a user mistake whose message names the input and what to do."""


class ConfigError(GanforgeError):
    """A configuration value is out of range or unknown."""


class DataError(GanforgeError):
    """A data spec, file or folder cannot be used."""


class CheckpointError(GanforgeError):
    """A checkpoint or generator file cannot be read or does not fit."""


class TrainingError(GanforgeError):
    """Training cannot go on (a non-finite loss, say)."""
