"""The passive detector: input conversion, training on a separable toy task, the file format, the shipped weights."""

import json
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from ganforge import detector
from ganforge.checkpoint import save_generator
from ganforge.cli import main
from ganforge.config import ModelConfig
from ganforge.data.idx import write_idx
from ganforge.detector_train import Augment, jpeg, rescale, roc_auc, shift, train_detector
from ganforge.errors import CheckpointError, ConfigError
from ganforge.models import build_generator

FIXTURES = __import__("pathlib").Path(__file__).parent / "data"


def toy_classes(n, seed=0):
    """Real: a bright bar on black (like a stroke); fake: the same bar plus grey speckle on the background."""
    rng = np.random.default_rng(seed)
    real = np.zeros((n, 28, 28), dtype=np.uint8)
    for i in range(n):
        col = rng.integers(8, 20)
        real[i, 6:22, col : col + 3] = 255
    fake = real.copy()
    speckle = rng.random(fake.shape) < 0.25
    fake[speckle] = np.maximum(fake[speckle], rng.integers(60, 140, size=int(speckle.sum())).astype(np.uint8))
    return real, fake


def test_inputs_of_any_size_and_colour_become_grey_28x28():
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (56, 40, 3), dtype=np.uint8)
    grey = detector.grey_28(rgb)
    expected = np.asarray(Image.fromarray(rgb).convert("L").resize((28, 28), Image.Resampling.BILINEAR))
    assert grey.shape == (28, 28) and grey.dtype == np.uint8
    np.testing.assert_array_equal(grey, expected)
    digit = rng.integers(0, 256, (28, 28), dtype=np.uint8)
    assert detector.grey_28(digit) is digit  # already the input size: untouched
    x = detector.to_input([digit, rgb])
    assert x.shape == (2, 1, 28, 28) and x.min() >= -1 and x.max() <= 1
    # A uint8 tensor, a float tensor in [-1, 1] and numpy arrays are the same input.
    as_tensor = torch.from_numpy(digit)[None, None]
    torch.testing.assert_close(detector.to_input(as_tensor), x[:1])
    torch.testing.assert_close(detector.to_input(as_tensor.float() / 127.5 - 1), x[:1])
    with pytest.raises(ConfigError, match="uint8"):
        detector.to_input([digit.astype(np.float32)])


def test_augmentations_shift_and_reencode():
    real, _ = toy_classes(1)
    moved = shift(real[0], 1, -2)
    np.testing.assert_array_equal(moved[1:, :-2], real[0][:-1, 2:])
    assert moved[0].sum() == 0 and moved[:, -2:].sum() == 0
    zoomed_in, zoomed_out = rescale(real[0], 3), rescale(real[0], -3)
    assert zoomed_in.shape == zoomed_out.shape == (28, 28)
    assert (zoomed_in > 127).sum() > (real[0] > 127).sum() > (zoomed_out > 127).sum()  # the bar grows, then shrinks
    resaved = jpeg(real[0], 50)
    assert resaved.shape == (28, 28) and not np.array_equal(resaved, real[0])


def test_roc_auc_matches_the_pairwise_definition():
    rng = np.random.default_rng(1)
    a, b = rng.random(40).round(1), rng.random(30).round(1) + 0.2  # ties on purpose
    pairs = np.mean([(y > x) + 0.5 * (y == x) for x in a for y in b])
    assert roc_auc(a, b) == pytest.approx(pairs)
    assert roc_auc(np.zeros(5), np.ones(5)) == 1.0


def test_training_separates_a_toy_task_and_the_threshold_spares_held_out_reals():
    torch.manual_seed(0)
    real, fake = toy_classes(400)
    trained = train_detector(real, fake, steps=60, batch_size=32, width=4, seed=0, aug=Augment(jpeg_p=0.0))
    p = trained.protocol
    assert p["heldout_auc"] > 0.9  # speckle vs clean black: separable by construction
    assert 0.5 <= trained.threshold < 1
    assert p["heldout_real_flagged"] <= 0.05
    assert p["n_real_heldout"] == 40 and p["n_real_train"] == 360


def test_detector_file_round_trip_and_damage(tmp_path):
    torch.manual_seed(0)
    net = detector.DetectorNet(width=4).eval()
    digest = detector.save_detector(tmp_path / "d.safetensors", net, threshold=0.625, protocol={"steps": 3})
    loaded = detector.load_detector(tmp_path / "d.safetensors")
    assert (loaded.threshold, loaded.protocol, loaded.sha256) == (0.625, {"steps": 3}, digest)
    images = torch.randint(0, 256, (5, 1, 28, 28), dtype=torch.uint8)
    np.testing.assert_allclose(
        loaded.score(images), detector.score(images, detector.Detector(net, 0.5, "", tmp_path, {}))
    )
    (tmp_path / "bad.safetensors").write_bytes(b"not a detector")
    with pytest.raises(CheckpointError, match="cannot be read"):
        detector.load_detector(tmp_path / "bad.safetensors")
    with pytest.raises(CheckpointError, match="does not exist"):
        detector.load_detector(tmp_path / "missing.safetensors")


def test_the_shipped_file_is_checked_against_its_recorded_sha256(tmp_path):
    shutil.copy(detector.WEIGHTS_DIR / detector.SHIPPED_FILE, tmp_path / detector.SHIPPED_FILE)
    (tmp_path / "SHA256SUMS").write_text(f"{'0' * 64}  {detector.SHIPPED_FILE}\n")
    with pytest.raises(CheckpointError, match="damaged or was replaced"):
        detector.load_detector(weights_dir=tmp_path)
    shipped = detector.load_detector()
    assert shipped.sha256 == detector.recorded_hashes()[detector.SHIPPED_FILE]
    protocol = shipped.protocol
    assert protocol["real"]["spec"] == "mnist-sample" and protocol["threshold"] == shipped.threshold
    assert len(protocol["fake"]) >= 4 and protocol["augment"]["jpeg_p"] > 0


@pytest.fixture(scope="module")
def fixture_digits():
    """16 generated digits and their tiles: tests/data/detector-fakes.png, a 4x4 grid with 2-px padding from a dcgan
    the shipped detector never saw (`bench/detector_generators.py --out /tmp/det-eval --seed 1 --only dcgan`, then
    `ganforge sample /tmp/det-eval/dcgan --n 16 --seed 5 --out tests/data/detector-fakes.png`)."""
    grid = np.asarray(Image.open(FIXTURES / "detector-fakes.png").convert("L"))
    tiles = np.stack([grid[2 + 30 * r : 30 + 30 * r, 2 + 30 * c : 30 + 30 * c] for r in range(4) for c in range(4)])
    return grid, tiles


def test_the_shipped_detector_scores_real_test_digits_low_and_generated_ones_high(shared_mnist, fixture_digits):
    from ganforge.data import load_dataset

    shipped = detector.load_detector()
    real = load_dataset(f"idx:{shared_mnist}").images[:400]
    real_scores = shipped.score(real)
    _, tiles = fixture_digits
    fake_scores = shipped.score(list(tiles))
    assert (real_scores > shipped.threshold).mean() <= 0.02
    assert np.median(real_scores) < 0.05
    assert (fake_scores > shipped.threshold).sum() >= 13
    assert np.median(fake_scores) > 0.95


def test_the_shipped_verdict_survives_a_jpeg_resave_and_a_crop_of_a_grid_tile(fixture_digits):
    """What docs/detection.md claims: re-saved as JPEG 75, or cut out of a grid, a generated digit is still flagged;
    cut with its 2-px border and resized (a loose crop), most are (13 of these 16 today; 86-91% in the eval)."""
    shipped = detector.load_detector()
    grid, tiles = fixture_digits
    resaved = np.stack([jpeg(t, 75) for t in tiles])
    assert (shipped.score(list(tiles)) > shipped.threshold).sum() >= 15
    assert (shipped.score(list(resaved)) > shipped.threshold).sum() >= 14
    loose = [np.asarray(Image.fromarray(grid[30 * r : 32 + 30 * r, 30 * c : 32 + 30 * c]).resize((28, 28)))
             for r in range(4) for c in range(4)]  # fmt: skip
    assert (shipped.score(loose) > shipped.threshold).sum() >= 10  # the tile with its 2-px border, resized


def test_stripping_the_metadata_changes_no_score(fixture_digits, tmp_path):
    """A re-save that drops ganforge's text chunks (and any XMP) keeps the pixels, so the detector's score stays."""
    from ganforge.detect import detect
    from ganforge.images import save_png

    _, tiles = fixture_digits
    save_png(tiles[0][:, :, None], tmp_path / "with.png", {"Software": "ganforge", "Comment": "synthetic"})
    Image.open(tmp_path / "with.png").save(tmp_path / "stripped.png")  # Pillow writes no text chunks back
    assert Image.open(tmp_path / "stripped.png").text == {}
    records = detect([tmp_path / "with.png", tmp_path / "stripped.png"]).records
    assert records[0].score == records[1].score and records[0].generated


def test_cli_trains_a_detector_file(tmp_path, capsys):
    real, _ = toy_classes(60)
    write_idx(tmp_path / "real" / "train-images-idx3-ubyte", real)
    cfg = ModelConfig(arch="mlp", image_size=28, channels=1, z_dim=8, width=16)
    torch.manual_seed(0)
    save_generator(tmp_path / "run" / "generator.safetensors", build_generator(cfg), cfg, {"preset": "tiny"})
    out = tmp_path / "det.safetensors"
    code = main(["detector", "train", "--real", f"idx:{tmp_path / 'real'}", "--fake", str(tmp_path / "run"),
                 "--out", str(out), "--steps", "3", "--n-fake", "60"])  # fmt: skip
    assert code == 0
    assert f"wrote {out}" in capsys.readouterr().out
    loaded = detector.load_detector(out)
    assert loaded.protocol["real"] == {"spec": f"idx:{tmp_path / 'real'}", "count": 60}
    assert [f["n"] for f in loaded.protocol["fake"]] == [60]
    assert json.loads(json.dumps(loaded.protocol))["steps"] == 3


@pytest.mark.parametrize(
    ("flags", "needle"),
    [
        (["--steps", "0"], "--steps must be at least 1; got 0"),
        (["--fake", "{tmp}/nothing"], "does not exist"),
        (["--out", "{tmp}"], "is a folder"),
    ],
)
def test_cli_refuses_bad_options_in_one_line(tmp_path, capsys, flags, needle):
    args = {"--real": "mnist-sample", "--fake": str(tmp_path), "--out": str(tmp_path / "d.safetensors")}
    for i in range(0, len(flags), 2):
        args[flags[i]] = flags[i + 1].format(tmp=tmp_path)
    code = main(["detector", "train", *[x for kv in args.items() for x in kv]])
    err = capsys.readouterr().err
    assert code == 2 and needle in err and err.count("\n") == 1
    assert not (tmp_path / "d.safetensors").exists()
