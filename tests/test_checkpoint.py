"""The file formats: generator files are byte-stable and shareable; a damaged checkpoint does not block resume."""

import json
import logging
import os
import stat

import pytest
import torch

from ganforge import checkpoint
from ganforge.config import ModelConfig
from ganforge.errors import CheckpointError
from ganforge.models import build_generator

CFG = ModelConfig(arch="mlp", image_size=8, channels=1, z_dim=8, width=16)


@pytest.fixture
def umask():
    """Set a umask for one test, then put the old one back."""
    old = os.umask(0o022)
    os.umask(old)

    def set_to(value):
        os.umask(value)

    yield set_to
    os.umask(old)


@pytest.mark.parametrize(("mask", "mode"), [(0o022, 0o644), (0o027, 0o640)])
def test_generator_file_follows_the_umask(tmp_path, umask, mask, mode):
    umask(mask)
    path = tmp_path / "generator.safetensors"
    checkpoint.save_generator(path, build_generator(CFG), CFG, {"preset": "test"})
    assert stat.S_IMODE(path.stat().st_mode) == mode
    checkpoint.save_generator(path, build_generator(CFG), CFG, {"preset": "test"})  # replacing keeps it
    assert stat.S_IMODE(path.stat().st_mode) == mode


def test_identical_models_give_identical_bytes(tmp_path):
    torch.manual_seed(0)
    G = build_generator(CFG)
    # The same provenance built in another order: the file must not depend on insertion order.
    first = {"preset": "seed", "seed": 3, "step": 40, "data": "mnist", "extra": {"b": 1, "a": 2}}
    second = {key: first[key] for key in reversed(first)} | {"extra": {"a": 2, "b": 1}}
    paths = [tmp_path / f"g{i}.safetensors" for i in range(3)]
    checkpoint.save_generator(paths[0], G, CFG, first)
    checkpoint.save_generator(paths[1], G, CFG, first)
    checkpoint.save_generator(paths[2], G, CFG, second)
    assert paths[0].read_bytes() == paths[1].read_bytes() == paths[2].read_bytes()

    # The header is sorted JSON and the file still loads, weights and provenance intact.
    data = paths[0].read_bytes()
    size = int.from_bytes(data[:8], "little")
    header = json.loads(data[8 : 8 + size])
    assert list(header) == sorted(header) and list(header["__metadata__"]) == sorted(header["__metadata__"])
    assert (8 + size) % 8 == 0
    loaded = checkpoint.load_generator(paths[0])
    assert loaded.provenance == first
    assert all(torch.equal(a, b) for a, b in zip(G.state_dict().values(), loaded.state_dict().values(), strict=True))

    # Other weights, other bytes.
    G.net[0].bias.data += 1
    checkpoint.save_generator(paths[1], G, CFG, first)
    assert paths[0].read_bytes() != paths[1].read_bytes()


def _run_with_checkpoints(run_dir, steps):
    for step in steps:
        checkpoint.save_checkpoint(
            checkpoint.checkpoint_path(run_dir, step), {"step": step, "w": torch.full((3,), step)}
        )


def test_load_latest_good_skips_damaged_checkpoints(tmp_path, caplog):
    _run_with_checkpoints(tmp_path, [10, 20, 30])
    path, payload = checkpoint.load_latest_good(tmp_path)
    assert path == checkpoint.checkpoint_path(tmp_path, 30) and payload["step"] == 30

    newest = checkpoint.checkpoint_path(tmp_path, 30)
    newest.write_bytes(newest.read_bytes()[:100])  # cut short, as by a full disk
    checkpoint.checkpoint_path(tmp_path, 20).write_bytes(b"")
    with caplog.at_level(logging.WARNING, logger="ganforge.checkpoint"):
        path, payload = checkpoint.load_latest_good(tmp_path)
    assert path == checkpoint.checkpoint_path(tmp_path, 10) and payload["step"] == 10
    assert torch.equal(payload["w"], torch.full((3,), 10))
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2 and all(line.startswith("warning: skipping damaged checkpoint") for line in lines)
    assert "step_0000030.pt" in lines[0] and "step_0000020.pt" in lines[1]
    assert all("\n" not in line for line in lines)

    torch.save([1, 2], checkpoint.checkpoint_path(tmp_path, 10))  # loads, but is not a checkpoint
    with pytest.raises(CheckpointError, match="none of the 3 checkpoints .* loads"):
        checkpoint.load_latest_good(tmp_path)


def test_load_latest_good_without_checkpoints_or_with_another_format(tmp_path):
    with pytest.raises(CheckpointError, match="no checkpoint in"):
        checkpoint.load_latest_good(tmp_path)
    _run_with_checkpoints(tmp_path, [10])
    # A newer ganforge's checkpoint is not damaged: say so rather than resume from an older step.
    torch.save({"format_version": 99, "step": 20}, checkpoint.checkpoint_path(tmp_path, 20))
    with pytest.raises(CheckpointError, match="format version 99"):
        checkpoint.load_latest_good(tmp_path)
