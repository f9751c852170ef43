import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from PIL import Image

from ganforge import TrainConfig, checkpoint, train
from ganforge.cli import main
from ganforge.config import ModelConfig
from ganforge.models import build_generator

TOY = ["--preset", "toy-ring", "--log-every", "10"]


def run_cli(*args):
    return main([str(a) for a in args])


def test_dry_run_prints_the_resolved_config(capsys):
    assert run_cli("train", "--preset", "seed", "--steps", "7", "--dry-run") == 0
    cfg = json.loads(capsys.readouterr().out)
    assert cfg["steps"] == 7 and cfg["model"]["width"] == 256 and cfg["lr_g"] == 2e-4 and cfg["beta1"] == 0.5
    assert cfg["batch_size"] == 128 and cfg["loss"] == "nonsaturating" and cfg["ema_decay"] == 0


def test_a_conditional_model_trains_from_the_command_line(tmp_path, capsys):
    run = tmp_path / "cond"
    args = ["--data", "mnist-sample", "--num-classes", "10", "--steps", "4", "--batch-size", "16", "--out", run]
    assert run_cli("train", *args) == 0
    assert run_cli("sample", run, "--n", "3", "--class", "7", "--out", tmp_path / "sevens.png") == 0
    assert run_cli("sample", run, "--n", "3", "--class", "10", "--out", tmp_path / "bad.png") == 2
    assert "class must be in 0..9" in capsys.readouterr().err
    wrong = ["train", "--data", "toy:ring8", "--preset", "toy-ring", "--num-classes", "3", "--steps", "2"]
    assert run_cli(*wrong, "--pac", "1", "--out", tmp_path / "wrong") == 2
    assert "8 classes" in capsys.readouterr().err
    # The toy-ring preset's D judges pairs, which a conditional model cannot: the error says what to pass.
    assert run_cli(*wrong, "--out", tmp_path / "wrong") == 2
    assert "needs --pac 1" in capsys.readouterr().err and not (tmp_path / "wrong").exists()


def test_every_command_has_help(capsys):
    for command in (["train"], ["sample"], ["data"]):
        with pytest.raises(SystemExit) as e:
            main([*command, "--help"])
        assert e.value.code == 0
    assert "--resume" in capsys.readouterr().out


def test_train_then_sample_from_the_generator_file_alone(tmp_path, capsys):
    run = tmp_path / "run"
    assert run_cli("train", *TOY, "--steps", "30", "--out", run) == 0
    out = capsys.readouterr().out
    assert f"done: {run}" in out and "img/s" in out and "final loss_d" in out
    grid = tmp_path / "grid.png"
    cfg = ModelConfig(arch="mlp", image_size=8, channels=1, z_dim=4, width=8)
    checkpoint.save_generator(tmp_path / "g.safetensors", build_generator(cfg), cfg, {"preset": "test"})
    assert run_cli("sample", tmp_path / "g.safetensors", "--n", "9", "--out", grid, "--seed", "3") == 0
    assert grid.is_file()


@pytest.mark.parametrize(
    "args, message",
    [
        (["--preset", "nope"], "unknown preset 'nope'"),
        (["--data", "nope:x"], "nope"),
        (["--data", "folder:/does/not/exist"], "/does/not/exist"),
        (["--steps", "0"], "steps must be a positive"),
        (["--batch-size", "-1"], "batch size must be positive"),
        (["--batch-size", "20000"], "larger than the dataset"),
    ],
)
def test_bad_train_input_is_one_line_and_exit_2(tmp_path, capsys, args, message):
    assert run_cli("train", *TOY, "--out", tmp_path / "run", *args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("ganforge: error: ") and message in err[-1]
    assert "Traceback" not in "\n".join(err)
    assert not list(tmp_path.rglob("*.pt")) and not list(tmp_path.rglob("*.tmp"))


def test_empty_and_unreadable_folders_are_refused(tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert run_cli("train", "--data", f"folder:{empty}", "--out", tmp_path / "a") == 2
    junk = tmp_path / "junk"
    junk.mkdir()
    (junk / "a.png").write_bytes(b"not a png")
    (junk / "b.jpg").write_bytes(b"\xff\xd8 nope")
    assert run_cli("train", "--data", f"folder:{junk}", "--out", tmp_path / "b") == 2
    err = capsys.readouterr().err
    assert err.count("ganforge: error: ") == 2 and str(junk) in err


def test_bad_idx_files_are_refused(tmp_path, capsys):
    bad = tmp_path / "idx"
    bad.mkdir()
    (bad / "train-images-idx3-ubyte").write_bytes((1234).to_bytes(4, "big") + bytes(16))
    assert run_cli("train", "--data", f"idx:{bad}", "--out", tmp_path / "a") == 2
    assert "magic" in capsys.readouterr().err


def test_resume_without_a_checkpoint_and_unwritable_output(tmp_path, capsys):
    assert run_cli("train", *TOY, "--out", tmp_path / "none", "--resume") == 2
    assert "no checkpoint" in capsys.readouterr().err
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert run_cli("train", *TOY, "--steps", "5", "--out", blocker / "run") == 2
    assert "ganforge: error: " in capsys.readouterr().err


def test_damaged_checkpoint_and_generator_files(tmp_path, capsys):
    run = tmp_path / "run"
    assert run_cli("train", *TOY, "--steps", "20", "--checkpoint-every", "10", "--out", run) == 0
    latest = checkpoint.latest_checkpoint(run)
    latest.write_bytes(latest.read_bytes()[:1000])  # truncated: --resume falls back to the one before, and says so
    assert run_cli("train", *TOY, "--steps", "30", "--out", run, "--resume") == 0
    err = capsys.readouterr().err
    assert "warning: skipping damaged checkpoint" in err and latest.name in err
    assert [step for step, _ in checkpoint.list_checkpoints(run)] == [10, 20, 30]
    for _, path in checkpoint.list_checkpoints(run):
        path.write_bytes(b"\x00" * 64)
    assert run_cli("train", *TOY, "--steps", "40", "--out", run, "--resume") == 2
    assert "ganforge: error: none of the 3 checkpoints" in capsys.readouterr().err
    generator = run / "generator.safetensors"
    data = generator.read_bytes()
    generator.write_bytes(data[: len(data) // 2])
    assert run_cli("sample", run, "--out", tmp_path / "s.png") == 2
    generator.write_text("hello, not safetensors")
    assert run_cli("sample", run, "--out", tmp_path / "s.png") == 2
    assert run_cli("sample", tmp_path / "missing", "--out", tmp_path / "s.png") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 3 and all(line.startswith("ganforge: error: ") for line in err)
    assert not (tmp_path / "s.png").exists()


def test_incompatible_generator_file(tmp_path, capsys):
    from safetensors.torch import save_file

    path = tmp_path / "g.safetensors"
    save_file(
        {"net.0.weight": torch.zeros(2, 2)},
        str(path),
        metadata={
            "format": "ganforge.generator",
            "format_version": "1",
            "model_config": json.dumps({"arch": "mlp", "image_size": 8, "channels": 1, "z_dim": 4, "width": 8}),
        },
    )
    assert run_cli("sample", path, "--out", tmp_path / "s.png") == 2
    assert "does not fit" in capsys.readouterr().err


def _spawn(out, steps):
    cmd = [
        sys.executable,
        "-m",
        "ganforge",
        "train",
        *TOY,
        "--steps",
        str(steps),
        "--checkpoint-every",
        "50",
        "--out",
        str(out),
    ]
    # Bit-exact only with the same settings: the child uses this process's thread count (other counts
    # may pick other reduction orders), whatever OMP_NUM_THREADS says or an earlier test set.
    env = {**os.environ, "OMP_NUM_THREADS": str(torch.get_num_threads())}
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def _wait_for_checkpoint(run, proc, timeout_s=60):
    deadline = time.monotonic() + timeout_s
    while checkpoint.latest_checkpoint(run) is None:
        assert proc.poll() is None, proc.communicate()
        if time.monotonic() >= deadline:  # a million-step child must not outlive the failed test
            proc.kill()
            proc.communicate()
            raise AssertionError("no checkpoint appeared")
        time.sleep(0.05)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL])
def test_a_stopped_process_resumes_to_identical_weights(tmp_path, sig):
    """Ctrl-C (saves a checkpoint, exits 130) or kill -9 (loses the steps since the last one), then --resume."""
    run = tmp_path / "stopped"
    proc = _spawn(run, 1_000_000)
    _wait_for_checkpoint(run, proc)
    time.sleep(0.3)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=60)
    if sig == signal.SIGINT:
        assert proc.returncode == 130, err
        assert "stopped at step" in err and "--resume" in out
    else:
        assert proc.returncode == -signal.SIGKILL
    stopped_at = checkpoint.list_checkpoints(run)[-1][0]
    total = stopped_at + 30
    assert run_cli("train", "--out", run, "--resume", "--steps", total) == 0
    assert run_cli("train", *TOY, "--steps", total, "--checkpoint-every", "50", "--out", tmp_path / "straight") == 0
    a = checkpoint.load_checkpoint(checkpoint.latest_checkpoint(run))
    b = checkpoint.load_checkpoint(checkpoint.latest_checkpoint(tmp_path / "straight"))
    assert a["step"] == b["step"] == total
    for key in a["G"]:
        assert torch.equal(a["G"][key], b["G"][key]), key
    for key in a["D"]:
        assert torch.equal(a["D"][key], b["D"][key]), key


def test_dcgan_on_a_folder_of_colour_images(tmp_path, capsys):
    """folder: data of mixed sizes and modes, conformed to a 32x32 RGB DCGAN."""
    folder = tmp_path / "pictures"
    folder.mkdir()
    rng = torch.Generator().manual_seed(0)
    for i in range(12):
        size = (40 + i, 36) if i % 2 else (50, 64)
        pixels = torch.randint(0, 256, (size[1], size[0], 3), dtype=torch.uint8, generator=rng).numpy()
        image = Image.fromarray(pixels)
        (image.convert("L") if i % 3 == 0 else image).save(folder / f"{i}.{'png' if i % 2 else 'jpg'}")
    (folder / "broken.png").write_bytes(b"not an image")
    run = tmp_path / "run"
    config = ModelConfig(arch="dcgan", image_size=32, channels=3, z_dim=8, width=4)
    train(TrainConfig(model=config, data=f"folder:{folder}", steps=3, batch_size=4, log_every=1, out_dir=str(run)))
    assert run_cli("sample", run, "--n", "4", "--out", tmp_path / "s.png") == 0
    with Image.open(tmp_path / "s.png") as im:
        assert im.mode == "RGB" and im.size == (2 * 34 + 2, 2 * 34 + 2)
