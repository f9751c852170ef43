"""TensorBoardLog writes event files under RUN/tb/ that TensorBoard reads back; a clear error without the package."""

from __future__ import annotations

import builtins

import numpy as np
import pytest
import torch

from ganforge.errors import GanforgeError
from ganforge.images import png_bytes
from ganforge.tensorboard import TensorBoardLog

event_accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")


def test_scalars_and_images_are_written_and_read_back(tmp_path):
    with TensorBoardLog(tmp_path) as tb:
        tb.scalars(100, {"loss_d": 1.25, "loss_g": 0.5, "warnings": ["d_wins: ..."], "is_x": True})
        tb.scalars(200, {"loss_d": 0.75, "loss_g": float("nan"), "metrics/fid": 12.0})
        tb.image(100, "samples", torch.rand(4, 1, 8, 8) * 2 - 1)
        tb.image(200, "samples", png_bytes(np.full((10, 12, 1), 200, np.uint8)))
    files = list((tmp_path / "tb").glob("events.out.tfevents.*"))
    assert files
    acc = event_accumulator.EventAccumulator(str(tmp_path / "tb"), size_guidance={"images": 0, "scalars": 0})
    acc.Reload()
    tags = acc.Tags()
    assert set(tags["scalars"]) == {"train/loss_d", "train/loss_g", "metrics/fid"}  # no list, bool or NaN
    assert [(e.step, e.value) for e in acc.Scalars("train/loss_d")] == [(100, 1.25), (200, 0.75)]
    assert [e.step for e in acc.Scalars("train/loss_g")] == [100]
    images = acc.Images("samples")
    assert [e.step for e in images] == [100, 200]
    assert (images[1].width, images[1].height) == (12, 10)


def test_missing_package_is_a_one_line_error(tmp_path, monkeypatch):
    real_import = builtins.__import__

    def no_tensorboard(name, *args, **kwargs):
        if name == "tensorboard" or name.startswith("tensorboard."):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_tensorboard)
    with pytest.raises(GanforgeError, match=r"pip install 'ganforge\[tensorboard\]'") as info:
        TensorBoardLog(tmp_path)
    assert "\n" not in str(info.value)
    assert not (tmp_path / "tb").exists()
