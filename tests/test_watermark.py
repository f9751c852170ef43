"""The keyed watermark: round trips, robustness with margins, no false finds, keys, grids, provenance."""

from __future__ import annotations

import io
import os
import stat

import numpy as np
import pytest
import torch
from PIL import Image

from ganforge import watermark as wm
from ganforge.errors import ConfigError
from ganforge.images import make_grid
from ganforge.watermark_code import cos_tail

KEY = bytes(range(32))
SHA = "3f" * 32


def digits(n: int, size: int = 28, seed: int = 0) -> np.ndarray:
    """(n, size, size) MNIST-like strokes: black ground, bright blurred line segments, some saturated."""
    rng = np.random.default_rng(seed)
    out = np.zeros((n, size, size))
    yy, xx = np.mgrid[0:size, 0:size]
    for k in range(n):
        for _ in range(3):
            (y0, x0), (y1, x1) = rng.uniform(0.2 * size, 0.8 * size, (2, 2))
            along = (yy - y0) * (y1 - y0) + (xx - x0) * (x1 - x0)
            t = np.clip(along / ((y1 - y0) ** 2 + (x1 - x0) ** 2 + 1e-9), 0, 1)
            distance = np.hypot(yy - y0 - t * (y1 - y0), xx - x0 - t * (x1 - x0))
            out[k] = np.maximum(out[k], 300 * np.exp(-(distance**2) / (2 * (size / 28) ** 2)))
    return np.clip(out, 0, 255).astype(np.uint8)


def photos(n: int, size: int = 64, seed: int = 0) -> np.ndarray:
    """(n, size, size, 3) smooth colour images with texture: a stand-in for natural images."""
    rng = np.random.default_rng(seed)
    low = rng.uniform(0, 255, (n, 3, 6, 6)).astype(np.float32)
    smooth = torch.nn.functional.interpolate(torch.from_numpy(low), size=(size, size), mode="bicubic").numpy()
    texture = rng.normal(0, 12, (n, 3, size, size))
    return np.clip(smooth + texture, 0, 255).astype(np.uint8).transpose(0, 2, 3, 1).copy()


def jpeg(pixels: np.ndarray, quality: int) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="JPEG", quality=quality)
    return np.asarray(Image.open(buf))


def payload_of(size: int) -> np.ndarray:
    return wm.payload_bits(SHA, wm.capacity(size, size))


def test_payload_names_the_generator_and_capacity_grows_with_size():
    assert wm.capacity(28, 28) == 32 and wm.capacity(64, 64) >= 48 and wm.capacity(128, 96) >= 48
    bits = wm.payload_bits(SHA, 32)
    assert bits.dtype == np.uint8 and set(np.unique(bits)) <= {0, 1}
    assert wm.payload_hex(bits) == SHA[:8]  # the payload is the sha256's first 32 bits
    assert wm.payload_hex(wm.payload_bits(SHA, 48)) == SHA[:12]
    assert wm.payload_hex(wm.payload_bits("not a sha", 32)) != wm.payload_hex(wm.payload_bits("other", 32))


@pytest.mark.parametrize(("size", "rgb"), [(28, False), (28, True), (64, False), (64, True)])
def test_round_trip_grey_and_rgb(size, rgb):
    images = photos(4, size) if rgb else digits(4, size)
    payload = payload_of(size)
    for image in images:
        marked = wm.embed(image, KEY, payload)
        assert marked.shape == image.shape and marked.dtype == np.uint8
        mse = ((marked.astype(float) - image) ** 2).mean()
        assert 10 * np.log10(255**2 / mse) > 35  # invisible: PSNR well above 35 dB on each image
        reading = wm.decode(marked, KEY)
        assert reading.found and reading.bit_accuracy == 1.0 and reading.p_value < 1e-8
        assert reading.payload == wm.payload_hex(payload) and reading.n_bits == len(payload)
        assert not wm.decode(image, KEY).found  # the same image, unmarked


def test_rgb_mark_lives_in_luminance_and_grey_channel_shapes_are_kept():
    image = digits(1)[0]
    marked = wm.embed(image[:, :, None], KEY, payload_of(28))
    assert marked.shape == (28, 28, 1)
    colour = wm.embed(np.repeat(image[:, :, None], 3, axis=2), KEY, payload_of(28))
    assert wm.decode(colour, KEY).found
    assert np.array_equal(colour[..., 0], colour[..., 1])  # the same change in every channel: grey stays grey


def test_survives_jpeg_75_with_margin():
    images = digits(6, seed=1)
    payload = payload_of(28)
    readings = [wm.decode(jpeg(wm.embed(image, KEY, payload), 75), KEY) for image in images]
    assert all(r.found for r in readings)
    expected = np.unpackbits(np.frombuffer(bytes.fromhex(wm.payload_hex(payload)), np.uint8))
    got = [np.unpackbits(np.frombuffer(bytes.fromhex(r.payload), np.uint8)) for r in readings]
    assert np.mean([(g == expected).mean() for g in got]) >= 0.9  # measured ~0.99 (bench); 0.9 is the margin


def test_survives_a_one_pixel_shift_and_brightness():
    image = digits(1, seed=2)[0]
    marked = wm.embed(image, KEY, payload_of(28))
    shifted = np.zeros_like(marked)
    shifted[1:, :] = marked[:-1, :]
    assert wm.decode(shifted, KEY).found
    darker = np.round(marked * 0.9).astype(np.uint8)
    assert wm.decode(darker, KEY).found


def test_wrong_key_and_unmarked_images_are_not_found():
    images = digits(20, seed=3)
    payload = payload_of(28)
    other = wm.new_key()
    assert other != KEY and len(other) == wm.KEY_BYTES
    for image in images[:8]:
        reading = wm.decode(wm.embed(image, KEY, payload), other)
        assert not reading.found and reading.p_value > wm.ALPHA
    natural = list(images) + list(photos(6, 28)) + list(photos(4, 64))
    natural += [np.zeros((28, 28), np.uint8), np.full((28, 28), 255, np.uint8), np.full((64, 64, 3), 128, np.uint8)]
    readings = [wm.decode(image, KEY) for image in natural]
    assert not any(r.found for r in readings)
    # Not marked, the check bits agree by chance: about half, never all.
    assert 0.3 < np.mean([r.bit_accuracy for r in readings]) < 0.7


def test_null_tail_is_a_valid_bound():
    # The sum of n cosines of uniform phases: mean 0, variance n / 2; the bound's tail is never below the truth.
    rng = np.random.default_rng(0)
    n = 48
    sums = np.cos(rng.uniform(0, 2 * np.pi, (200_000, n))).sum(axis=1)
    for t in (0.0, 5.0, 10.0, 15.0):
        assert cos_tail(np.array(t), n) >= np.mean(sums >= t) - 3e-3
    assert cos_tail(np.array(-n - 1.0), n) == 1.0 and cos_tail(np.array(n + 1.0), n) == 0.0
    # The weighted sum the decoder uses: 32 payload terms plus twice 16 check terms.
    heavy = 2 * np.cos(rng.uniform(0, 2 * np.pi, (200_000, 16))).sum(axis=1)
    weighted = np.cos(rng.uniform(0, 2 * np.pi, (200_000, 32))).sum(axis=1) + heavy
    for t in (0.0, 8.0, 15.0, 20.0):
        assert cos_tail(np.array(t), 32, 16, 2) >= np.mean(weighted >= t) - 3e-3
    assert cos_tail(np.array(t), 32, 16, 2) < 10 * np.mean(weighted >= t) + 1e-3  # and not absurdly loose
    assert cos_tail(np.array(-65.0), 32, 16, 2) == pytest.approx(1.0) and cos_tail(np.array(65.0), 32, 16, 2) == 0.0


def test_grids_decode_from_their_tiles():
    tiles = np.stack([wm.embed(image, KEY, payload_of(28)) for image in digits(25, seed=4)])[..., None]
    grid = make_grid(tiles, nrow=5)
    assert grid.shape == (152, 152, 1)
    reading = wm.decode(grid, KEY)
    assert reading.found and reading.payload == SHA[:8]
    assert wm.decode(jpeg(grid[..., 0], 75), KEY).found
    unmarked = make_grid(digits(25, seed=4)[..., None], nrow=5)
    assert not wm.decode(unmarked, KEY).found


def test_bad_input_is_refused():
    with pytest.raises(ConfigError, match="uint8"):
        wm.embed(np.zeros((28, 28), np.float32), KEY, payload_of(28))
    with pytest.raises(ConfigError, match="cannot be marked"):
        wm.embed(np.zeros((16, 16), np.uint8), KEY, payload_of(16))
    with pytest.raises(ConfigError, match="32 payload bits"):
        wm.embed(np.zeros((28, 28), np.uint8), KEY, np.zeros(31, np.uint8))
    with pytest.raises(ConfigError, match="bytes"):
        wm.embed(np.zeros((28, 28), np.uint8), b"short", payload_of(28))
    assert not wm.decode(np.zeros((16, 16), np.uint8), KEY).found  # too small to carry a mark: not found


def test_key_file_is_private_and_never_overwritten(tmp_path):
    path = wm.write_key(tmp_path / "keys" / "a.key")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    key = wm.read_key(path)
    assert len(key) == wm.KEY_BYTES
    before = path.read_bytes()
    with pytest.raises(ConfigError, match="already exists"):
        wm.write_key(path)
    assert path.read_bytes() == before
    assert [p.name for p in path.parent.iterdir()] == ["a.key"]  # no temporary file left behind
    with pytest.raises(ConfigError, match="does not exist"):
        wm.read_key(tmp_path / "missing.key")
    (tmp_path / "bad.key").write_text("not hex\n")
    with pytest.raises(ConfigError, match="ganforge key new"):
        wm.read_key(tmp_path / "bad.key")


def test_resolve_key_order_and_first_use(tmp_path, monkeypatch, caplog, _offline_home):
    monkeypatch.delenv("GANFORGE_KEY_FILE", raising=False)
    with caplog.at_level("INFO", logger="ganforge.watermark_keys"):
        key, path = wm.resolve_key()
    assert path == _offline_home / "watermark.key" and stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert [r.getMessage() for r in caplog.records if str(path) in r.getMessage()]  # one line says where
    assert wm.resolve_key() == (key, path)  # the same key next time, no new file
    env_key = wm.write_key(tmp_path / "env.key")
    monkeypatch.setenv("GANFORGE_KEY_FILE", str(env_key))
    assert wm.resolve_key()[1] == env_key
    flag_key = wm.write_key(tmp_path / "flag.key")
    assert wm.resolve_key(flag_key) == (wm.read_key(flag_key), flag_key)


def test_what_it_does_not_survive_crops_and_rescales():
    # docs/responsible-use.md says so: the decoder searches 1-pixel shifts and brightness, not scale or crop.
    for image in digits(4, seed=5):
        marked = wm.embed(image, KEY, payload_of(28))
        cropped = marked[2:-2, 2:-2]
        rescaled = np.asarray(Image.fromarray(marked).resize((25, 25), Image.Resampling.BILINEAR))
        assert not wm.decode(cropped, KEY).found and not wm.decode(rescaled, KEY).found


def test_real_mnist_digits_are_not_found(shared_mnist):
    from ganforge.data.idx import read_images

    digits_real = read_images(shared_mnist / "t10k-images-idx3-ubyte.gz")[:300]
    for key in (KEY, wm.new_key()):
        readings = [wm.decode(image, key) for image in digits_real]
        assert not any(r.found for r in readings)
        assert min(r.p_value for r in readings) > wm.ALPHA
    marked = wm.embed(digits_real[0], KEY, payload_of(28))  # and a real digit, marked, is found
    assert wm.decode(marked, KEY).found and wm.decode(jpeg(marked, 75), KEY).found


def test_per_class_grids_with_a_label_margin_decode():
    from ganforge.images import label_rows

    tiles = np.stack([wm.embed(image, KEY, payload_of(28)) for image in digits(9, seed=6)])[..., None]
    grid = label_rows(make_grid(tiles, nrow=3), ["zero", "one", "two"])
    assert grid.shape[1] > 3 * 30 + 2  # a margin on the left
    reading = wm.decode(grid, KEY)
    assert reading.found and reading.payload == SHA[:8]


def test_pixel_cost_makes_the_ground_next_to_strokes_dear():
    image = np.zeros((28, 28, 1))
    image[10:14, 10:14] = 200  # a stroke
    cost = wm.pixel_cost(image, 5.0)
    assert cost[12, 12] == 1.0  # on the stroke
    assert cost[9, 12] == cost[12, 15] == cost[8, 8] == 5.0  # ground within NEAR_PX of it
    assert cost[12, 14 + wm.NEAR_PX] == cost[0, 0] == 1.0  # ground further out
    assert (wm.pixel_cost(photos(1, 28)[0].astype(float), 5.0) == 1.0).all()  # no black ground: no masking
    assert (wm.pixel_cost(image, 1.0) == 1.0).all()


def test_masking_moves_the_change_off_the_ground_next_to_strokes():
    images, payload = digits(6), payload_of(28)
    plain = wm.mark_batch(images[..., None], KEY, payload)[..., 0]
    masked = wm.mark_batch(images[..., None], KEY, payload, near_ground_cost=3.0)[..., 0]
    near = np.stack([wm.pixel_cost(image[..., None].astype(float), 3.0) for image in images]) > 1

    def energy(marked: np.ndarray) -> float:
        return float(((marked.astype(float) - images) ** 2)[near].sum())

    assert energy(masked) < 0.6 * energy(plain)  # about a quarter, measured
    with pytest.raises(ConfigError, match="near_ground_cost"):
        wm.embed(images[0], KEY, payload, near_ground_cost=0.0)
    for marked in masked:
        reading = wm.decode(marked, KEY)
        assert reading.found and reading.payload == wm.payload_hex(payload)
