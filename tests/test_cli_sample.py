"""`ganforge sample`: reproducible from its own provenance, JPEG, --per-class, 2-D scatter plots, bad input."""

import numpy as np
import pytest
import torch
from conftest import save_tiny_generator
from PIL import Image

from ganforge.checkpoint import load_generator, save_generator
from ganforge.cli import main
from ganforge.config import ModelConfig
from ganforge.images import make_grid, png_text
from ganforge.models import build_generator
from ganforge.sample import sample, sample_per_class, save_samples


def run(*args):
    """The exit code, for our errors (returned) and argparse's (raised as SystemExit) alike."""
    try:
        return main(["sample", *map(str, args)])
    except SystemExit as e:
        return e.code


def _redraw(G, text, out):
    """Draw a grid again from nothing but its provenance chunks."""
    first, last = map(int, text["ganforge:index"].split("-"))
    label = text.get("ganforge:class")
    per_class = label == "per-class"
    labels = None if label in (None, "cycle", "per-class") else int(label)
    return save_samples(
        G, out, last - first + 1, seed=int(text["ganforge:seed"]), truncation=float(text["ganforge:truncation"]),
        labels=labels, nrow=int(text["ganforge:nrow"]), per_class=per_class,
    )[0]  # fmt: skip


@pytest.mark.parametrize(
    "flags",
    [
        ["--n", "7", "--seed", "11", "--truncation", "0.7", "--nrow", "2"],
        ["--n", "5", "--seed", "3", "--class", "2"],
        ["--n", "4", "--seed", "9"],  # a conditional G cycles through its classes
        ["--n", "2", "--seed", "5", "--per-class"],
    ],
)
def test_a_cli_grid_is_redrawn_bit_for_bit_from_its_own_provenance(tmp_path, conditional, flags):
    out = tmp_path / "grid.png"
    assert run(conditional, "--out", out, *flags) == 0
    text = png_text(out)
    G = load_generator(conditional)
    assert text["ganforge:generator_sha256"] == G.sha256 and text["ganforge:synthetic"] == "true"
    again = _redraw(G, text, tmp_path / "again.png")
    assert again.read_bytes() == out.read_bytes()


def test_single_images_record_their_own_class_and_index(tmp_path, conditional):
    assert run(conditional, "--n", "4", "--seed", "2", "--out", f"{tmp_path}/singles/") == 0
    texts = [png_text(tmp_path / "singles" / f"seed2_{i:05d}.png") for i in range(4)]
    assert [t["ganforge:class"] for t in texts] == ["0", "1", "2", "0"]
    assert [t["ganforge:index"] for t in texts] == ["0", "1", "2", "3"]


def test_per_class_grid_has_one_row_a_class_with_shared_latents(tmp_path, conditional):
    G = load_generator(conditional)
    images = sample_per_class(G, 4, seed=1)
    assert images.shape == (12, 1, 8, 8)
    for k in range(3):  # row k is class k, drawn from the seed's first 4 latents
        assert torch.equal(images[4 * k : 4 * k + 4], sample(G, 4, seed=1, labels=k))
    assert not torch.equal(images[:4], images[4:8])
    out = tmp_path / "rows.png"
    assert run(conditional, "--per-class", "--n", "4", "--seed", "1", "--out", out) == 0
    with Image.open(out) as im:  # 4 columns, 3 rows (one a class), after a margin naming the rows
        assert im.size[1] == 3 * 10 + 2 and im.size[0] > 4 * 10 + 2
        tiles = np.asarray(im)[:, -(4 * 10 + 2) :]
    assert png_text(out)["ganforge:class"] == "per-class"
    assert np.array_equal(tiles, make_grid(images, nrow=4)[:, :, 0])  # the margin added, nothing of the grid changed


def test_per_class_on_an_unconditional_generator_is_one_line_and_exit_2(tmp_path, plain, capsys):
    assert run(plain, "--per-class", "--out", tmp_path / "x.png") == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unconditional" in err and "--per-class" in err
    assert not (tmp_path / "x.png").exists()


def test_jpeg_output_is_a_real_jpeg_with_provenance_in_its_comment(tmp_path, plain):
    out = tmp_path / "grid.jpg"
    assert run(plain, "--n", "9", "--seed", "4", "--out", out) == 0
    with Image.open(out) as im:
        assert im.format == "JPEG" and im.size == (32, 32)
    text = png_text(out)
    assert text["ganforge:synthetic"] == "true" and text["ganforge:seed"] == "4"
    assert text["ganforge:generator_sha256"] == load_generator(plain).sha256


@pytest.mark.parametrize(
    ("flags", "needle"),
    [
        (["--nrow", "-2"], "--nrow (images a row) must be at least 1; got -2"),
        (["--nrow", "0"], "--nrow"),
        (["--n", "10000000000"], "over the maximum of 100,000"),
        (["--n", "0"], "--n must be at least 1"),
        (["--n", "200", "--max-n", "100"], "--max-n 200"),
        (["--out", ""], "--out is empty"),
        (["--out", "x.gif"], "--out x.gif: ganforge writes .png or .jpg or .jpeg files"),
        (["--class", "1"], "unconditional"),
        (["--device", "tpu"], "unknown device 'tpu'"),
        (["--truncation", "0"], "truncation must be in (0, 1]"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path, plain, capsys, flags, needle, monkeypatch):
    monkeypatch.chdir(tmp_path)  # --out '' once wrote into the current folder
    assert run(plain, *flags) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("ganforge: error:") and needle in err[-1], err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plain"]  # nothing written


def test_a_bad_class_names_the_range_not_every_label(tmp_path, conditional, capsys):
    assert run(conditional, "--n", "256", "--class", "7", "--out", tmp_path / "x.png") == 2
    err = capsys.readouterr().err
    assert "class must be in 0..2" in err and "got 7" in err and len(err) < 200


def test_cuda_n_is_accepted_as_a_device_name(tmp_path, plain, capsys):
    code = run(plain, "--device", "cuda:1", "--out", tmp_path / "x.png")
    if torch.cuda.device_count() > 1:
        assert code == 0
        return
    assert code == 2
    err = capsys.readouterr().err
    assert "cuda:1" in err and ("no CUDA GPU" in err or "this machine has" in err)


def test_a_2d_model_writes_a_scatter_plot_over_the_modes(tmp_path):
    path = save_tiny_generator(tmp_path / "toy", image_size=1, channels=2, out_activation="none")
    out = tmp_path / "points.png"
    assert run(path, "--seed", "3", "--out", out) == 0
    with Image.open(out) as im:
        assert im.size[0] >= 300 and im.size[1] >= 300  # a plot, not 17x17 pixels of 1x1 "images"
        pixels = np.asarray(im.convert("RGB")).astype(int)
    red = (pixels[..., 0] > 180) & (pixels[..., 1] < 90) & (pixels[..., 2] < 90)  # the modes' crosses
    blue = (pixels[..., 2] > 120) & (pixels[..., 0] < 110)  # the samples
    # Measured over init seeds 0-2 and OMP_NUM_THREADS=1 and 2: red 169 px every time, blue 393-572 px.
    assert red.sum() > 50 and blue.sum() > 50
    text = png_text(out)
    assert text["ganforge:index"] == "0-2499" and text["ganforge:seed"] == "3"
    assert text["ganforge:plot"] == "scatter of 2-D points"
    assert run(path, "--out", f"{tmp_path}/dir/") == 2  # one plot, not a folder of points


def test_the_default_out_never_overwrites_a_file(plain, tmp_path, monkeypatch, capsys):
    """Issue 29: `sample RUN` with no --out used to write ./samples.png, over a run's own grid when run inside it."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "samples.png").write_bytes(b"the run's own grid")
    assert run(plain) == 0 and run(plain) == 0 and run(plain, "--seed", "4") == 0
    assert (tmp_path / "samples.png").read_bytes() == b"the run's own grid"
    assert {p.name for p in tmp_path.glob("sample_seed*.png")} == {"sample_seed0.png", "sample_seed0-2.png",
                                                                   "sample_seed4.png"}  # fmt: skip
    assert "sample_seed" in capsys.readouterr().out


def test_the_default_out_is_in_the_help(capsys):
    assert run("--help") == 0
    assert "sample_seed<SEED>.png" in " ".join(capsys.readouterr().out.split())


def test_a_runs_own_files_are_refused_as_out(tmp_path, plain, capsys):
    run_dir = tmp_path / "run"
    (run_dir / "samples").mkdir(parents=True)
    for name in ("config.json", "metrics.jsonl"):
        (run_dir / name).write_text("{}\n")
    for out in (run_dir / "samples.png", run_dir / "samples" / "step_0000100.png"):
        assert run(plain, "--out", out) == 2
        assert "is a file of the run" in capsys.readouterr().err
        assert not out.exists()
    assert run(plain, "--out", run_dir / "mine.png") == 0  # anything else in the folder is the user's to write


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--out", "grid.gif"], "writes .png"),
        (["--seed", "-1"], "--seed must be an integer from 0"),
        (["--seed", "123456789012345678901"], "--seed must be an integer from 0"),
        (["--truncation", "0"], "truncation must be in (0, 1]"),
    ],
)
def test_options_are_checked_before_the_model_loads(tmp_path, flags, message, capsys, monkeypatch):
    import ganforge.checkpoint

    def refuse(*args, **kwargs):
        raise AssertionError("the generator was loaded before the options were checked")

    monkeypatch.setattr(ganforge.checkpoint, "load_generator", refuse)
    assert run(tmp_path / "missing.safetensors", *flags) == 2
    assert message in capsys.readouterr().err


def test_per_class_rows_are_labelled_with_the_class_names(tmp_path):
    """Issue 29: --per-class grids carried no class names."""
    torch.manual_seed(0)
    cfg = ModelConfig(arch="mlp", image_size=8, channels=1, z_dim=6, width=16, num_classes=3)
    named = tmp_path / "named.safetensors"
    save_generator(named, build_generator(cfg), cfg, {"class_names": ["cat", "dog", "sneaker"]})
    assert run(named, "--per-class", "--n", "4", "--out", tmp_path / "grid.png") == 0
    assert png_text(tmp_path / "grid.png")["ganforge:rows"] == '["cat", "dog", "sneaker"]'
    labelled = np.asarray(Image.open(tmp_path / "grid.png"))
    plain_grid = tmp_path / "plain.png"
    save_samples(load_generator(named), plain_grid, 4, labels=[0, 0, 0, 0], nrow=4)
    # The margin adds width, and it holds drawn text (bright pixels on the black margin).
    assert labelled.shape[1] > np.asarray(Image.open(plain_grid)).shape[1] + 10
    margin = labelled[:, : labelled.shape[1] - np.asarray(Image.open(plain_grid)).shape[1]]
    assert (margin > 128).sum() > 20
    unnamed = save_tiny_generator(tmp_path / "unnamed", num_classes=3)
    assert run(unnamed, "--per-class", "--n", "2", "--out", tmp_path / "grid2.png") == 0
    assert png_text(tmp_path / "grid2.png")["ganforge:rows"] == '["0", "1", "2"]'


def test_an_existing_folder_without_a_trailing_slash_is_a_folder_out(plain, tmp_path):
    folder = tmp_path / "pics"
    folder.mkdir()
    assert run(plain, "--n", "3", "--out", folder) == 0
    assert sorted(p.name for p in folder.iterdir()) == ["seed0_00000.png", "seed0_00001.png", "seed0_00002.png"]
