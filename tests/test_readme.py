"""Every command in the README's shell blocks runs as written (the cheap ones for real, with few steps) or is skipped
with a reason, so that a command added to the README cannot go untested."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from ganforge.presets import PRESETS

README = Path(__file__).resolve().parents[1] / "README.md"

# The commands that are not run here, each with the reason. A new README command runs in test_readme_commands_run
# or is added here with its reason; test_every_command_is_run_or_skipped fails otherwise.
SKIPPED = {
    "python -m pip install torch==2.13.0 -e '.[dev,serve]'": "installs from the package index; .ci/run runs this line",
    "python -m pytest": "the whole suite, this test included; .ci/run runs it",
    "ganforge serve runs/seed": "a server that runs until stopped; tests/test_serve_*.py start it and call the API",
    "torchrun --standalone --nproc-per-node 2 -m ganforge train --preset seed": (
        "two processes and a rendezvous (10+ s); tests/test_cli_distributed.py runs the same launch for 20 steps"
    ),
    "python -m pip install -e '.[docs]'": "installs from the package index; .ci/run installs the docs extra",
    "mkdocs serve": "a server that runs until stopped; .ci/run builds the same site with mkdocs build --strict",
}

# Training runs with its steps (the preset's own when --steps is not given: 10,000 for seed) divided by this, so
# that a resume in the README still goes on from the run before it.
STEP_SCALE = 500
EVAL_N = 1_000  # KID's subset size: the fewest samples `ganforge eval` accepts
TIMEOUT_S = 120


def readme_commands(text: str) -> list[list[str]]:
    """The commands of every ```bash block: lines joined at trailing backslashes, comments dropped, split at &&."""
    commands = []
    for block in re.findall(r"^```bash\n(.*?)^```", text, flags=re.M | re.S):
        for line in block.replace("\\\n", " ").splitlines():
            tokens = shlex.split(line, comments=True)
            while tokens:
                end = tokens.index("&&") if "&&" in tokens else len(tokens)
                commands.append(tokens[:end])
                tokens = tokens[end + 1 :]
    return [c for c in commands if c]


def _option(argv: list[str], name: str) -> str | None:
    return argv[argv.index(name) + 1] if name in argv else None


def rewrite(argv: list[str]) -> list[str]:
    """The README command as run here: fewer training steps, fewer eval samples, this checkout's ganforge."""
    argv = list(argv)
    if argv[:2] == ["ganforge", "train"] and not {"--dry-run", "--help", "-h"} & set(argv):
        if "--steps" in argv:
            i = argv.index("--steps") + 1
            argv[i] = str(max(1, int(argv[i]) // STEP_SCALE))
        else:
            argv += ["--steps", str(max(1, PRESETS[_option(argv, "--preset") or "seed"].steps // STEP_SCALE))]
        argv += ["--check-every", "0"]  # the quick quality checks (half a short run's time) have tests of their own
    if argv[:2] == ["ganforge", "eval"] and "--n" not in argv and "--help" not in argv:
        argv += ["--n", str(EVAL_N)]
    if argv[0] == "ganforge":  # the interpreter running the tests, so the code under test, wherever PATH points
        argv = [sys.executable, "-m", "ganforge", *argv[1:]]
    return argv


def check_outputs(argv: list[str], stdout: str, cwd: Path) -> None:
    """What each kind of command must leave behind, beyond exit code 0."""
    if "--help" in argv:
        assert stdout.startswith("usage:"), stdout[:200]
        return
    command = argv[:2]
    if command == ["ganforge", "train"] and "--dry-run" in argv:
        assert json.loads(stdout)["preset"] == _option(argv, "--preset")
    elif command == ["ganforge", "train"]:
        run = cwd / (_option(argv, "--out") or f"runs/{_option(argv, '--preset')}")
        assert (run / "generator.safetensors").is_file() and (run / "report.html").is_file()
        steps = [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()]
        assert max(steps) == int(_option(argv, "--steps") or 0)
    elif command == ["ganforge", "sample"]:
        out = cwd / (_option(argv, "--out") or f"sample_seed{_option(argv, '--seed') or 0}.png")
        assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    elif command == ["ganforge", "eval"]:
        result = json.loads((cwd / argv[2] / "eval.json").read_text())
        assert result["n_samples"] == int(_option(argv, "--n") or 0) and result["fid"] >= 0
    elif command == ["ganforge", "report"]:
        assert "<html" in (cwd / argv[2] / "report.html").read_text()[:1000].lower()
    elif argv[:3] == ["ganforge", "data", "list"]:
        assert "mnist-sample" in stdout


def test_every_command_is_run_or_skipped_with_a_reason() -> None:
    commands = {shlex.join(c) for c in readme_commands(README.read_text())}
    stale = set(SKIPPED) - commands
    assert not stale, f"SKIPPED names commands that are no longer in the README: {sorted(stale)}"
    assert all(reason.strip() for reason in SKIPPED.values())
    runnable = [c for c in commands if c not in SKIPPED]
    # Everything that is not skipped is a ganforge command, which test_readme_commands_run knows how to shorten;
    # anything else (a new tool, a script) needs a rewrite rule there or a reason here.
    foreign = [c for c in runnable if not c.startswith("ganforge ")]
    assert not foreign, f"README commands neither run nor skipped: {foreign}; run them in this test or skip them"
    assert len(runnable) >= 5, f"the README's shell blocks were not parsed: {sorted(commands)}"


def test_readme_is_a_short_front_door() -> None:
    assert len(README.read_text().splitlines()) <= 150, "the README is the front door: move details into docs/"


def test_parsing_joins_continuations_drops_comments_and_splits_at_and() -> None:
    text = "```bash\npip install 'a[b]' && ganforge train --preset seed   # train\nganforge x \\\n  --y 1\n```\n"
    assert readme_commands(text) == [
        ["pip", "install", "a[b]"],
        ["ganforge", "train", "--preset", "seed"],
        ["ganforge", "x", "--y", "1"],
    ]
    assert rewrite(["ganforge", "train", "--preset", "seed", "--steps", "12000", "--resume"])[-5:] == [
        "--steps",
        "24",
        "--resume",
        "--check-every",
        "0",
    ]


def _photos(folder: Path, n: int = 64) -> None:
    """The README's `photos` folder: n small JPEGs in two class subfolders (dcgan's batch of 64 needs 64)."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    for k in range(n):
        sub = folder / ("cats" if k % 2 else "dogs")
        sub.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (60, 80, 3), dtype=np.uint8)).save(sub / f"{k}.jpg", quality=90)


def test_readme_commands_run(tmp_path: Path) -> None:
    """The README's commands in order, in one fresh folder (a later command reads what an earlier one wrote)."""
    _photos(tmp_path / "photos")
    ran = []
    for command in readme_commands(README.read_text()):
        if shlex.join(command) in SKIPPED:
            continue
        argv = rewrite(command)
        try:
            done = subprocess.run(argv, cwd=tmp_path, capture_output=True, text=True, timeout=TIMEOUT_S)
        except subprocess.TimeoutExpired:
            pytest.fail(f"README command {shlex.join(command)!r} ran past {TIMEOUT_S} s")
        assert done.returncode == 0, f"README command {shlex.join(command)!r} failed:\n{done.stderr[-3000:]}"
        check_outputs(command if command[0] != "ganforge" else ["ganforge", *argv[3:]], done.stdout, tmp_path)
        ran.append(shlex.join(command))
    assert len(ran) >= 5, ran
