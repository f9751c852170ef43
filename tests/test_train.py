import dataclasses
import json

import pytest
import torch

from ganforge import checkpoint
from ganforge.config import ModelConfig, TrainConfig
from ganforge.data import Dataset
from ganforge.errors import CheckpointError, DataError, TrainingError
from ganforge.train import build_state, train, train_step


def tiny_data(n=256, size=8, classes=0, channels=1):
    rng = torch.Generator().manual_seed(1)
    images = torch.randint(0, 256, (n, channels, size, size), dtype=torch.uint8, generator=rng)
    labels = torch.arange(n) % classes if classes else None
    return Dataset("tiny", "tiny", images, labels, classes, "train", "test fixture")


def tiny_cfg(out_dir, **changes):
    cfg = TrainConfig(
        model=ModelConfig(arch="mlp", image_size=8, channels=1, z_dim=8, width=16),
        data="tiny",
        steps=40,
        batch_size=16,
        log_every=10,
        checkpoint_every=20,
        sample_every=20,
        device="cpu",
        out_dir=str(out_dir),
    )
    return dataclasses.replace(cfg, **changes)


def weights(path):
    payload = checkpoint.load_checkpoint(checkpoint.latest_checkpoint(path))
    return {**{f"G.{k}": v for k, v in payload["G"].items()}, **{f"D.{k}": v for k, v in payload["D"].items()}}


def assert_same_weights(a, b):
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_a_step_changes_both_networks_and_logs_probabilities():
    cfg = tiny_cfg("unused")
    state = build_state(cfg, torch.device("cpu"))
    before_g = [p.clone() for p in state.G.parameters()]
    before_d = [p.clone() for p in state.D.parameters()]
    real = torch.rand(16, 1, 8, 8) * 2 - 1
    out = train_step(state, lambda: (real, None), cfg, with_stats=True)
    assert all(not torch.equal(a, b) for a, b in zip(before_g, state.G.parameters(), strict=True))
    assert all(not torch.equal(a, b) for a, b in zip(before_d, state.D.parameters(), strict=True))
    assert 0 < out["d_real"] < 1 and 0 < out["d_fake"] < 1
    assert out["grad_norm_d"] > 0 and out["grad_norm_g"] > 0
    assert state.step == 1
    assert all(p.requires_grad for p in state.D.parameters())


def test_the_run_directory_follows_the_contract(tmp_path):
    result = train(tiny_cfg(tmp_path / "run"), dataset=tiny_data())
    run = tmp_path / "run"
    assert json.loads((run / "config.json").read_text())["steps"] == 40
    lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [line["step"] for line in lines] == [10, 20, 30, 40]
    for key in ("loss_d", "loss_g", "d_real", "d_fake", "grad_norm_d", "grad_norm_g", "img_per_s"):
        assert key in lines[0]
    assert [s for s, _ in checkpoint.list_checkpoints(run)] == [20, 40]
    assert (run / "samples" / "step_0000020.png").is_file() and (run / "samples.png").is_file()
    G = checkpoint.load_generator(run)
    assert G.provenance["step"] == 40 and G.provenance["preset"] == "custom" and G.provenance["seed"] == 0
    assert result.step == 40 and result.steps_trained == 40 and result.final["loss_d"] > 0
    assert not list(run.rglob("*.tmp"))


def test_same_seed_same_weights_other_seed_other_weights(tmp_path):
    train(tiny_cfg(tmp_path / "a"), dataset=tiny_data())
    train(tiny_cfg(tmp_path / "b"), dataset=tiny_data())
    train(tiny_cfg(tmp_path / "c", seed=1), dataset=tiny_data())
    assert_same_weights(weights(tmp_path / "a"), weights(tmp_path / "b"))
    assert not torch.equal(weights(tmp_path / "a")["G.net.0.weight"], weights(tmp_path / "c")["G.net.0.weight"])


@pytest.mark.parametrize("use_ema", [False, True])
def test_resume_with_more_steps_is_exact(tmp_path, use_ema):
    ema = 0.9 if use_ema else 0.0
    train(tiny_cfg(tmp_path / "full", steps=60, ema_decay=ema), dataset=tiny_data())
    train(tiny_cfg(tmp_path / "split", steps=30, ema_decay=ema), dataset=tiny_data())
    result = train(tiny_cfg(tmp_path / "split", steps=60, ema_decay=ema), dataset=tiny_data(), resume=True)
    assert result.steps_trained == 30
    assert_same_weights(weights(tmp_path / "full"), weights(tmp_path / "split"))
    full = checkpoint.load_checkpoint(checkpoint.latest_checkpoint(tmp_path / "full"))
    split = checkpoint.load_checkpoint(checkpoint.latest_checkpoint(tmp_path / "split"))
    assert torch.equal(full["opt_g"]["state"][0]["exp_avg"], split["opt_g"]["state"][0]["exp_avg"])
    if use_ema:
        assert all(torch.equal(full["G_ema"][k], split["G_ema"][k]) for k in full["G_ema"])
    steps = [json.loads(line)["step"] for line in (tmp_path / "split" / "metrics.jsonl").read_text().splitlines()]
    assert steps == [10, 20, 30, 40, 50, 60]


def test_a_crash_between_checkpoints_resumes_exactly(tmp_path):
    """Like kill -9 at step 27: the run restarts from step 20 and ends as if never stopped."""
    train(tiny_cfg(tmp_path / "full"), dataset=tiny_data())

    def crash(step, logged):
        if step == 27:
            raise SystemExit("killed")

    with pytest.raises(SystemExit):
        train(tiny_cfg(tmp_path / "crashed"), dataset=tiny_data(), on_step=crash)
    train(tiny_cfg(tmp_path / "crashed"), dataset=tiny_data(), resume=True)
    assert_same_weights(weights(tmp_path / "full"), weights(tmp_path / "crashed"))
    steps = [json.loads(line)["step"] for line in (tmp_path / "crashed" / "metrics.jsonl").read_text().splitlines()]
    assert steps == [10, 20, 30, 40]


def test_conditional_training_runs(tmp_path):
    cfg = tiny_cfg(
        tmp_path / "cond", model=ModelConfig(arch="mlp", image_size=8, channels=1, z_dim=8, width=16, num_classes=4)
    )
    train(cfg, dataset=tiny_data(classes=4))
    assert checkpoint.load_generator(tmp_path / "cond").cfg.num_classes == 4


def test_dcgan_trains_and_resumes_exactly(tmp_path):
    model = ModelConfig(arch="dcgan", image_size=28, channels=1, z_dim=8, width=4)
    data = tiny_data(n=64, size=28)
    train(tiny_cfg(tmp_path / "full", model=model, steps=6, checkpoint_every=3, ema_decay=0.5), dataset=data)
    train(tiny_cfg(tmp_path / "split", model=model, steps=3, checkpoint_every=3, ema_decay=0.5), dataset=data)
    train(
        tiny_cfg(tmp_path / "split", model=model, steps=6, checkpoint_every=3, ema_decay=0.5), dataset=data, resume=True
    )
    assert_same_weights(weights(tmp_path / "full"), weights(tmp_path / "split"))


def test_a_lasting_non_finite_loss_stops_after_one_rollback_and_keeps_the_last_good_checkpoint(tmp_path):
    data = tiny_data()
    data.images = data.images.float() / 127.5 - 1  # float data is used in place, so it can be poisoned

    def poison(step, logged):
        if step == 25:
            data.images.fill_(float("nan"))

    # step 26 goes non-finite: rolled back to 20 with halved rates; the data stays poisoned, so step 21 fails again
    with pytest.raises(TrainingError, match="non-finite by step 21.*again after a rollback.*step_0000020"):
        train(tiny_cfg(tmp_path / "nan"), dataset=data, on_step=poison)
    assert [s for s, _ in checkpoint.list_checkpoints(tmp_path / "nan")] == [20]
    assert torch.isfinite(weights(tmp_path / "nan")["G.net.0.weight"]).all()


def test_bad_runs_are_refused(tmp_path):
    with pytest.raises(DataError, match="batch size 512 is larger"):
        train(tiny_cfg(tmp_path / "a", batch_size=512), dataset=tiny_data())
    with pytest.raises(CheckpointError, match="no checkpoint"):
        train(tiny_cfg(tmp_path / "b"), dataset=tiny_data(), resume=True)
    train(tiny_cfg(tmp_path / "c", steps=20), dataset=tiny_data())
    with pytest.raises(TrainingError, match="already holds a run"):
        train(tiny_cfg(tmp_path / "c", steps=20), dataset=tiny_data())
    wider = ModelConfig(arch="mlp", image_size=8, channels=1, z_dim=8, width=32)
    with pytest.raises(TrainingError, match="cannot change model.width: 16 -> 32"):
        train(tiny_cfg(tmp_path / "c", steps=40, model=wider), dataset=tiny_data(), resume=True)
    with pytest.raises(DataError, match="shape"):
        train(tiny_cfg(tmp_path / "d"), dataset=tiny_data(size=28))


def test_eval_every_adds_metrics_to_the_log(tmp_path):
    model = ModelConfig(arch="mlp", image_size=28, channels=1, z_dim=8, width=16)
    cfg = tiny_cfg(tmp_path / "eval", model=model, data="mnist-sample", steps=20, eval_every=10, sample_every=0)
    train(cfg)
    lines = [json.loads(line) for line in (tmp_path / "eval" / "metrics.jsonl").read_text().splitlines()]
    assert [line["step"] for line in lines] == [10, 20]
    for line in lines:
        assert line["fid"] > 0 and 0 <= line["precision"] <= 1 and line["n_samples"] == 2000
