"""`ganforge eval`: bad options fail before any work, where the JSON goes, progress callbacks."""

import json

import pytest
import torch

import ganforge.metrics
from ganforge.checkpoint import save_generator
from ganforge.cli import main
from ganforge.cli.eval import EXTRACTOR_NAMES
from ganforge.config import ModelConfig
from ganforge.metrics import evaluate
from ganforge.models import build_generator

RESULT = {"fid": 12.5, "kid": 0.01, "kid_std": 0.001, "n_samples": 30, "data": "mnist", "seed": 0}


@pytest.fixture
def calls(monkeypatch):
    """Replace the evaluation with a stub that records its calls: these tests are about the CLI."""
    seen = []

    def fake_evaluate(*args, **kwargs):
        seen.append((args, kwargs))
        return dict(RESULT)

    monkeypatch.setattr(ganforge.metrics, "evaluate", fake_evaluate)
    return seen


@pytest.fixture
def run_dir(tmp_path):
    torch.manual_seed(0)
    cfg = ModelConfig(arch="mlp", image_size=28, channels=1, z_dim=8, width=16)
    run = tmp_path / "run"
    save_generator(run / "generator.safetensors", build_generator(cfg), cfg, {"data": "mnist"})
    return run


def run(*args):
    try:
        return main(["eval", *map(str, args)])
    except SystemExit as e:
        return e.code


@pytest.mark.parametrize(
    ("flags", "needle"),
    [
        (["--batch-size", "0"], "--batch-size must be at least 1; got 0"),
        (["--batch-size", "-5"], "--batch-size must be at least 1; got -5"),
        (["--n", "1000000"], "--n 1,000,000 is over the maximum of 100,000"),
        (["--n", "0"], "--n must be at least 1"),
        (["--json", "{tmp}"], "is a folder"),
        (["--json", "{tmp}/out/"], "is a folder"),
        (["--device", "cuda:x"], "unknown device 'cuda:x'"),
        (["--inception-weights", "{tmp}/none.pth"], "none.pth is not a file; pass torch-fidelity's weights-inception"),
        (["--inception-weights", "{tmp}", "--extractor", "mnist"], "--inception-weights is for --extractor inception"),
    ],
)
def test_bad_options_fail_in_one_line_before_the_evaluation(tmp_path, run_dir, calls, capsys, flags, needle):
    flags = [f.format(tmp=tmp_path) for f in flags]
    assert run(run_dir, *flags) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("ganforge: error:") and needle in err[-1], err
    assert calls == []  # refused before sampling a single image


def test_inception_weights_reach_evaluate_and_scores_name_their_extractor(tmp_path, run_dir, calls, capsys):
    weights = tmp_path / "pt_inception-2015-12-05-6726825d.pth"
    weights.write_bytes(b"checked by evaluate, which is a stub here")
    assert run(run_dir, "--inception-weights", weights) == 0
    assert calls[0][1]["inception_weights"] == str(weights)
    calls.clear()
    assert run(run_dir) == 0 and calls[0][1]["inception_weights"] is None
    out = capsys.readouterr().out
    assert "FID (mnist features)" not in out  # the stub's result names no extractor: the label stays plain
    result = {**RESULT, "extractor": {"name": "inception", "label": "Inception"}}
    table = ganforge.metrics.format_table(result)
    assert "FID (Inception)" in table and "KID (Inception)" in table


def test_max_n_raises_the_cap(run_dir, calls):
    assert run(run_dir, "--n", "150000", "--max-n", "200000") == 0
    assert calls[0][1]["n"] == 150_000


def test_a_run_directory_gets_eval_json(run_dir, calls, capsys):
    assert run(run_dir, "--n", "30") == 0
    assert json.loads((run_dir / "eval.json").read_text())["fid"] == 12.5
    assert "wrote" in capsys.readouterr().out


def test_a_bare_generator_file_prints_and_writes_json_only_when_asked(tmp_path, run_dir, calls, capsys):
    file = run_dir / "generator.safetensors"
    assert run(file, "--n", "30") == 0
    assert "FID" in capsys.readouterr().out
    assert sorted(p.name for p in run_dir.iterdir()) == ["generator.safetensors"]  # nothing beside the file
    out = tmp_path / "scores.json"
    assert run(file, "--n", "30", "--json", out) == 0
    assert json.loads(out.read_text())["fid"] == 12.5


def test_extractor_names_in_the_help_match_the_registry():
    assert EXTRACTOR_NAMES == ganforge.metrics.EXTRACTORS


def test_evaluate_reports_progress_for_sampling_and_features(run_dir):
    seen = []
    small = {"reference_count": 600, "kid_subsets": 5, "kid_subset_size": 100}
    evaluate(run_dir, data="mnist-sample", n=200, batch_size=64, on_progress=lambda *a: seen.append(a), **small)
    stages = {stage for stage, _, _ in seen}
    assert {"sampling", "features", "reference features"} <= stages
    for stage in stages:
        done = [d for s, d, _ in seen if s == stage]
        total = {t for s, _, t in seen if s == stage}
        assert done == sorted(done) and len(total) == 1 and done[-1] == total.pop()


def test_evaluate_refuses_a_batch_size_below_one(run_dir):
    with pytest.raises(ganforge.errors.ConfigError, match="batch size must be at least 1"):
        evaluate(run_dir, data="mnist-sample", n=200, batch_size=0)


def test_sampling_batch_by_batch_is_the_same_as_one_call(run_dir):
    from ganforge.checkpoint import load_generator
    from ganforge.metrics import _sample_in_batches
    from ganforge.sample import sample

    G = load_generator(run_dir)
    for batch_size in (1, 40, 64, 500):
        assert torch.equal(_sample_in_batches(G, 100, 3, batch_size, None), sample(G, 100, seed=3))


def test_progress_bars_only_on_a_terminal(monkeypatch, capsys):
    import ganforge.cli.common as common

    monkeypatch.setattr(common, "is_terminal", lambda: False)
    assert common.progress_bars() is None
    monkeypatch.setattr(common, "is_terminal", lambda: True)
    on_progress = common.progress_bars(delay_s=0)
    for done in (100, 200, 300):
        on_progress("features", done, 300)
    err = capsys.readouterr().err
    assert "features:" in err and "/300" in err  # drawn on stderr, and cleared once done (leave=False)
    assert capsys.readouterr().out == ""


def test_colour_images_scored_by_the_digit_extractor_say_so(tmp_path, capsys):
    """Issue 29: colour images were scored on grey copies without a word, and the hints named `extractor=` and
    `--channels`, which `ganforge eval` does not have."""
    import numpy as np
    from PIL import Image

    folder = tmp_path / "colour"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(20):
        Image.fromarray(rng.integers(0, 256, (28, 28, 3), dtype=np.uint8)).save(folder / f"{i}.png")
    assert run("--images", folder, "--data", "mnist-sample", "--json", tmp_path / "e.json") == 0
    err = " ".join(capsys.readouterr().err.split())
    assert "grey copies" in err and "--channels" not in err and "extractor=..." not in err
    assert "only 20 samples" in err  # and a sample count this small is scored, with its spread
