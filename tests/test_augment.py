import pytest
import torch
import torch.nn.functional as F

from ganforge import augment
from ganforge.augment import AdaptiveAugment, ada_augment, diff_augment


def _rng(seed=0):
    return torch.Generator().manual_seed(seed)


def _images(b=16, c=3, size=16, seed=0):
    return torch.rand(b, c, size, size, generator=_rng(seed)) * 2 - 1


def _distinct(b, size=8):
    """Images whose pixels are all different, so a transform can be read off the output."""
    return torch.arange(b * size * size, dtype=torch.float32).view(b, 1, size, size)


@pytest.mark.parametrize("channels", [1, 3])
def test_diff_augment_is_differentiable_reproducible_and_changes_images(channels):
    x = _images(c=channels).requires_grad_(True)
    y = diff_augment(x, _rng(1))
    assert y.shape == x.shape and y.dtype == x.dtype
    assert not torch.equal(y, x)
    y.square().sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert torch.equal(diff_augment(x, _rng(1)), y)  # the same rng state, the same transforms
    assert not torch.equal(diff_augment(x, _rng(2)), y)


def test_diff_augment_translation_shifts_with_zero_fill():
    x = _distinct(40) + 1  # no pixel is 0, so the fill is visible
    y = diff_augment(x, _rng(3), policy=("translation",))
    shifts = set()
    for b in range(len(x)):
        padded = F.pad(x[b], (1, 1, 1, 1))  # 8 px: shifts of up to 1/8 of the size, i.e. 1 px
        matches = [
            (dy, dx)
            for dy in (-1, 0, 1)
            for dx in (-1, 0, 1)
            if torch.equal(padded[:, 1 - dy : 9 - dy, 1 - dx : 9 - dx], y[b])
        ]
        assert matches, f"sample {b} is not a translated copy"
        shifts.add(matches[0])
    assert len(shifts) == 9  # every shift in [-1, 1]^2 occurs among 40 samples


def test_diff_augment_cutout_zeroes_one_square_of_half_the_size():
    x = torch.ones(256, 1, 16, 16)
    y = diff_augment(x, _rng(4), policy=("cutout",))
    holes = y[:, 0] == 0
    for hole in holes:
        rows, cols = hole.any(1).nonzero().flatten(), hole.any(0).nonzero().flatten()
        assert 4 <= len(rows) <= 8 and 4 <= len(cols) <= 8  # centred on the image: at least half inside
        assert hole.sum() == len(rows) * len(cols)  # a rectangle: the square, clipped at the border
        assert rows.diff().eq(1).all() and cols.diff().eq(1).all()
    # The whole 8x8 square lies inside for 9 of 16 centres per axis: (9/16)^2 = 0.32, standard error 0.03.
    assert 0.22 < (holes.sum((1, 2)) == 64).float().mean() < 0.42
    assert torch.equal(y[~holes[:, None]], x[~holes[:, None]])  # and nothing else changed


def test_diff_augment_color_on_grey_is_a_per_sample_affine_map():
    # Brightness and contrast only: y = a x + c per sample with a in [0.5, 1.5).
    x = _images(c=1)
    y = diff_augment(x, _rng(5), policy=("color",))
    for xb, yb in zip(x.flatten(1), y.flatten(1), strict=True):
        a = ((xb - xb.mean()) * (yb - yb.mean())).sum() / (xb - xb.mean()).square().sum()
        assert 0.5 <= a < 1.5
        assert torch.allclose(yb, a * xb + (yb.mean() - a * xb.mean()), atol=1e-5)


def test_diff_augment_color_changes_saturation_of_rgb():
    x = _images(c=3)
    y = diff_augment(x, _rng(6), policy=("color",))
    spread_x = (x - x.mean(1, keepdim=True)).abs().mean((1, 2, 3))
    spread_y = (y - y.mean(1, keepdim=True)).abs().mean((1, 2, 3))
    ratio = spread_y / spread_x
    assert ratio.max() / ratio.min() > 2  # saturation (and contrast) vary per sample


def test_diff_augment_rejects_an_unknown_transform():
    with pytest.raises(ValueError, match="unknown DiffAugment transform 'blur'"):
        diff_augment(_images(), _rng(), policy=("blur",))


def test_diff_augment_keeps_bfloat16():
    x = _images().to(torch.bfloat16)
    assert diff_augment(x, _rng()).dtype == torch.bfloat16


def test_ada_at_p_zero_is_the_identity_and_at_p_one_changes_every_image():
    x = _images(c=3)
    assert torch.equal(ada_augment(x, _rng(), 0.0), x)
    y = ada_augment(x, _rng(), 1.0)
    assert y.shape == x.shape
    assert (y != x).flatten(1).any(1).all()


def test_ada_geometry_is_a_flip_rotation_and_reflected_translation():
    x = _distinct(64)
    y = augment._geometric(x, _rng(7), 1.0)
    seen = set()
    for b in range(len(x)):
        found = None
        for flip in (False, True):
            for k in range(4):
                turned = torch.rot90(x[b].flip(-1) if flip else x[b], k, (-2, -1))
                padded = F.pad(turned[None], (1, 1, 1, 1), mode="reflect")[0]
                for dy in (-1, 0, 1):
                    for dx in (-1, 0, 1):
                        if torch.equal(padded[:, 1 - dy : 9 - dy, 1 - dx : 9 - dx], y[b]):
                            found = found or (flip, k)
        assert found is not None, f"sample {b} is not a flipped, turned and shifted copy"
        seen.add(found)
    assert len(seen) >= 6  # the 8 flips x turns (some coincide for a match) all occur


def test_ada_applies_each_transform_with_probability_p():
    # At p = 0.3 a grey image escapes every transform with probability 0.175: the flip changes it with
    # p / 2, a turn and a shift with 3p / 4 (k = 0 and shift (0, 0) are identities), brightness,
    # contrast and cutout with p: 0.85 * 0.775^2 * 0.7^3. 4,000 samples: standard error 0.006.
    x = _images(b=4000, c=1, size=8)
    y = ada_augment(x, _rng(8), 0.3)
    untouched = (y == x).flatten(1).all(1).float().mean().item()
    assert 0.15 < untouched < 0.20
    assert (ada_augment(x, _rng(8), 0.9) == x).flatten(1).all(1).float().mean() < 0.01


def test_ada_draws_the_same_numbers_at_every_p():
    x = _images()
    rng_a, rng_b = _rng(9), _rng(9)
    ada_augment(x, rng_a, 0.0)
    ada_augment(x, rng_b, 0.7)
    assert torch.equal(rng_a.get_state(), rng_b.get_state())


def test_ada_is_differentiable_and_reproducible():
    x = _images().requires_grad_(True)
    ada = AdaptiveAugment(p=0.8)
    y = ada(x, _rng(10))
    (y * torch.linspace(0, 1, y.numel()).view_as(y)).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert torch.equal(ada(x, _rng(10)), y)
    assert not torch.equal(ada(x, _rng(11)), y)


def _run(ada, logits_value, steps, batch=8):
    for _ in range(steps):
        ada.observe(torch.full((batch,), logits_value))
        ada.update()


def test_ada_p_rises_when_d_overfits_and_falls_when_it_does_not():
    ada = AdaptiveAugment(target=0.6, interval=4, speed_imgs=1_000)
    _run(ada, 5.0, 3)  # D sure of every real image: r_t = 1 > 0.6
    assert ada.p == 0  # no adjustment before `interval` steps
    _run(ada, 5.0, 1)
    assert ada.p == pytest.approx(4 * 8 / 1_000) and ada.rt == 1.0
    _run(ada, 5.0, 4 * 40)
    assert ada.p == 1.0  # clamped
    _run(ada, -5.0, 4 * 5)  # r_t = -1 < 0.6
    assert ada.p == pytest.approx(1 - 5 * 32 / 1_000) and ada.rt == -1.0
    ada = AdaptiveAugment(speed_imgs=1_000)
    _run(ada, -5.0, 40)
    assert ada.p == 0.0  # clamped at 0


def test_ada_rt_is_the_mean_sign_of_the_real_logits():
    ada = AdaptiveAugment(target=0.6, interval=2, speed_imgs=1_000)
    ada.observe(torch.tensor([1.0, 2.0, -1.0, 3.0]))  # signs sum to 2
    ada.update()
    ada.observe(torch.tensor([-1.0, 2.0, 0.5, 0.5]))  # 2 more
    ada.update()
    assert ada.rt == pytest.approx(0.5)  # 4 / 8, below the target
    assert ada.p == 0.0
    ada = AdaptiveAugment(target=0.4, interval=2, speed_imgs=1_000)
    _run(ada, 1.0, 1)
    ada.observe(torch.tensor([-1.0] * 8))
    ada.update()
    assert ada.rt == 0.0 and ada.p == 0.0


def test_ada_reduce_sums_statistics_across_processes():
    calls = []

    def reduce(t):  # as all_reduce over two processes that saw the same logits
        calls.append(t.clone())
        t.mul_(2)

    ada = AdaptiveAugment(interval=2, speed_imgs=1_000)
    for _ in range(2):
        ada.observe(torch.ones(8))
        ada.update(reduce)
    assert len(calls) == 1 and torch.equal(calls[0], torch.tensor([16.0, 16.0]))
    assert ada.p == pytest.approx(32 / 1_000)


def test_ada_state_round_trip_resumes_exactly():
    ada = AdaptiveAugment(interval=4, speed_imgs=1_000)
    _run(ada, 2.0, 6)  # mid-interval: 2 steps of statistics pending
    saved = ada.state_dict()
    resumed = AdaptiveAugment(interval=4, speed_imgs=1_000)
    resumed.load_state_dict(saved)
    for a in (ada, resumed):
        _run(a, 2.0, 2)
        _run(a, -1.0, 4)
    assert resumed.p == ada.p and resumed.rt == ada.rt
    assert resumed.state_dict()["calls"] == ada.state_dict()["calls"] == 12
    x = _images()
    assert torch.equal(resumed(x, _rng(3)), ada(x, _rng(3)))


def test_ada_rejects_bad_settings():
    with pytest.raises(ValueError, match="target"):
        AdaptiveAugment(target=1.5)
    with pytest.raises(ValueError, match="interval"):
        AdaptiveAugment(interval=0)
