"""torchrun end to end: a 2-process run of the seed preset equals a 1-process run at the same global batch."""

import os
import shutil
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file

from ganforge import checkpoint

torchrun = shutil.which("torchrun")
pytestmark = pytest.mark.skipif(torchrun is None, reason="needs torch's torchrun launcher (pip install torch)")


def _train(out, *extra, nproc=None):
    args = ["-m", "ganforge", "train", "--preset", "seed", "--data", "mnist-sample", "--steps", "20",
            "--log-every", "10", "--checkpoint-every", "10", "--sample-every", "0", "--check-every", "0",
            "--device", "cpu", "--out", str(out), *extra]  # fmt: skip
    cmd = [sys.executable, *args] if nproc is None else [torchrun, "--standalone", f"--nproc-per-node={nproc}", *args]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)


def test_two_processes_equal_one_at_the_same_global_batch(tmp_path):
    one = _train(tmp_path / "one")
    assert one.returncode == 0, one.stderr
    two = _train(tmp_path / "two", nproc=2)
    assert two.returncode == 0, two.stderr
    a = load_file(tmp_path / "one" / "generator.safetensors")
    b = load_file(tmp_path / "two" / "generator.safetensors")
    # Measured: the largest difference is about 1e-7 (reduction order); the issue asks for 1e-4.
    assert max((a[k] - b[k]).abs().max().item() for k in a) < 1e-4
    # rank 0 alone wrote the run: one config, one log line a logged step
    assert (tmp_path / "two" / "metrics.jsonl").read_text().count("\n") == 2
    assert [s for s, _ in checkpoint.list_checkpoints(tmp_path / "two")] == [10, 20]


def test_resume_under_torchrun_is_exact_and_another_world_size_is_refused(tmp_path):
    straight = _train(tmp_path / "straight", nproc=2)
    assert straight.returncode == 0, straight.stderr
    first = _train(tmp_path / "run", "--steps", "10", nproc=2)
    assert first.returncode == 0, first.stderr
    refused = _train(tmp_path / "run", "--resume")
    assert refused.returncode == 2 and "trained by 2 process(es), this run has 1" in refused.stderr
    resumed = _train(tmp_path / "run", "--resume", nproc=2)
    assert resumed.returncode == 0, resumed.stderr
    a = load_file(tmp_path / "straight" / "generator.safetensors")
    b = load_file(tmp_path / "run" / "generator.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_a_batch_that_does_not_divide_is_one_error_line(tmp_path):
    bad = _train(tmp_path / "bad", "--batch-size", "127", nproc=2)
    assert bad.returncode != 0
    assert bad.stderr.count("ganforge: error:") == 1 and "127" in bad.stderr
    assert not (tmp_path / "bad" / "config.json").exists()


def test_quick_checks_off_the_log_cadence_keep_the_ranks_in_step(tmp_path):
    # Rank 0 alone runs the quick checks; a check step must still be a stats step on every rank, or rank 0
    # all-reduces the stats while rank 1 all-reduces gradients (a gloo size mismatch that aborted the run).
    run = _train(tmp_path / "two", "--log-every", "0", "--check-every", "5", nproc=2)
    assert run.returncode == 0, run.stderr
    steps = [line for line in (tmp_path / "two" / "metrics.jsonl").read_text().splitlines() if '"step"' in line]
    assert len(steps) == 4  # checks at steps 5, 10, 15 and 20


@pytest.mark.parametrize("world_size, teardown_runs", [("2", False), ("1", False), (None, True)])
def test_a_torchrun_worker_flushes_its_output_and_skips_the_interpreter_teardown(world_size, teardown_runs):
    # Gloo's threads and objects, destroyed in the interpreter's teardown, aborted a finished run in CI: a worker
    # ends through os._exit once its command is done. What it printed must still come out, with its exit code.
    script = (
        "import atexit, sys; atexit.register(lambda: print('teardown ran', flush=True)); "
        "from ganforge.cli import main; sys.exit(main(['data', 'list']))"
    )
    # torchrun sets WORLD_SIZE, also for one process (which joins a gloo group of one too); a plain run has none.
    env = {k: v for k, v in os.environ.items() if k != "WORLD_SIZE"} | (
        {"WORLD_SIZE": world_size} if world_size else {}
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stderr
    assert "mnist-sample" in done.stdout
    assert ("teardown ran" in done.stdout) is teardown_runs
