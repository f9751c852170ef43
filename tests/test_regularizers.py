import math

import pytest
import torch
from torch import nn

from ganforge import regularizers


class Linear(nn.Module):
    """D(x) = <w, x> + b on flattened images: its input gradient is w everywhere."""

    def __init__(self, w):
        super().__init__()
        self.w = nn.Parameter(w.clone())
        self.b = nn.Parameter(torch.zeros((), dtype=w.dtype))

    def forward(self, x, labels=None):
        return x.flatten(1) @ self.w + self.b


def _images(seed=0, n=8, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 1, 3, 3, generator=g, dtype=dtype), torch.randn(n, 1, 3, 3, generator=g, dtype=dtype)


def _direction(norm, dim=9, seed=1):
    w = torch.randn(dim, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return w / w.norm() * norm


def test_gradient_penalty_is_zero_for_a_unit_gradient_and_positive_otherwise():
    real, fake = _images()
    assert regularizers.gradient_penalty(Linear(_direction(1.0)), real, fake, None).item() < 1e-20
    # A linear D has the same gradient norm n everywhere: the penalty is exactly (n - 1)^2.
    for norm in (0.5, 2.0, 3.0):
        gp = regularizers.gradient_penalty(Linear(_direction(norm)), real, fake, None)
        assert math.isclose(gp.item(), (norm - 1) ** 2, rel_tol=1e-9)


def test_one_sided_gradient_penalty_ignores_norms_below_one():
    real, fake = _images()
    assert regularizers.gradient_penalty(Linear(_direction(0.5)), real, fake, None, one_sided=True).item() == 0
    gp = regularizers.gradient_penalty(Linear(_direction(2.5)), real, fake, None, one_sided=True)
    assert math.isclose(gp.item(), 1.5**2, rel_tol=1e-9)


def test_gradient_penalty_is_taken_on_the_interpolates_drawn_from_rng():
    # D(x) = 1/2 sum(x^2) has input gradient x: the penalty reveals exactly where it was taken.
    def D(x, labels):
        return 0.5 * x.flatten(1).square().sum(1)

    real, fake = _images(2)
    rng = torch.Generator().manual_seed(7)
    gp = regularizers.gradient_penalty(D, real, fake, None, rng=rng)
    alpha = torch.rand(real.size(0), 1, 1, 1, generator=torch.Generator().manual_seed(7), dtype=real.dtype)
    x_hat = alpha * real + (1 - alpha) * fake
    expected = ((x_hat.flatten(1).norm(dim=1) - 1) ** 2).mean()
    assert torch.allclose(gp, expected, rtol=1e-12)
    # The same rng state draws the same alphas: the penalty is reproducible, which resume relies on.
    again = regularizers.gradient_penalty(D, real, fake, None, rng=torch.Generator().manual_seed(7))
    assert torch.equal(gp, again)


def test_r1_is_the_squared_gradient_norm_of_a_linear_d():
    w = _direction(1.7)
    real, fake = _images()
    D = Linear(w)
    assert math.isclose(regularizers.r1_penalty(D, real, None).item(), w.square().sum().item(), rel_tol=1e-12)
    assert math.isclose(regularizers.r2_penalty(D, fake, None).item(), w.square().sum().item(), rel_tol=1e-12)


def test_r1_matches_a_hand_computed_gradient_of_a_nonlinear_d():
    # D(x) = sum(x^3) / 3 has gradient x^2, so R1 = E[sum(x^4)].
    real, _ = _images(3)

    def D(x, labels):
        return x.flatten(1).pow(3).sum(1) / 3

    expected = real.flatten(1).pow(4).sum(1).mean()
    assert torch.allclose(regularizers.r1_penalty(D, real, None), expected, rtol=1e-12)


def test_penalties_are_differentiable_in_d_weights_and_leave_g_alone():
    real, fake = _images()
    fake = fake.clone().requires_grad_(True)  # as if it came from G
    D = Linear(_direction(2.0))
    # d/dw ||w||^2 = 2w; d/dw (||w|| - 1)^2 = 2 (||w|| - 1) w / ||w||.
    (grad,) = torch.autograd.grad(regularizers.r1_penalty(D, real, None), D.w)
    assert torch.allclose(grad, 2 * D.w)
    (grad,) = torch.autograd.grad(regularizers.gradient_penalty(D, real, fake, None), D.w)
    assert torch.allclose(grad, 2 * (2.0 - 1) * D.w / 2.0)
    for penalty in (regularizers.gradient_penalty(D, real, fake, None), regularizers.r2_penalty(D, fake, None)):
        penalty.backward()
    assert fake.grad is None  # the penalties train D only


def test_penalties_train_a_real_network():
    torch.manual_seed(0)
    D = nn.Sequential(nn.Flatten(), nn.Linear(9, 16), nn.Tanh(), nn.Linear(16, 1), nn.Flatten(0))
    real, fake = _images(4, dtype=torch.float32)
    for penalty in (
        regularizers.r1_penalty(lambda x, y: D(x), real, None),
        regularizers.gradient_penalty(lambda x, y: D(x), real, fake, None),
    ):
        D.zero_grad()
        penalty.backward()
        # Every parameter but the last bias shapes the input gradient (a constant shift of the logit does not).
        for p in [D[1].weight, D[1].bias, D[3].weight]:
            assert p.grad is not None and p.grad.abs().sum() > 0


def test_penalties_use_the_adversarial_logit_of_an_acgan_output_and_pass_labels():
    w = _direction(1.5)
    seen = []

    def D(x, labels):  # (B, 1 + K): column 0 adversarial, the rest class logits with steep gradients
        seen.append(labels)
        flat = x.flatten(1)
        return torch.cat([(flat @ w)[:, None], 100 * flat[:, :3]], dim=1)

    real, fake = _images()
    labels = torch.arange(8) % 3
    assert math.isclose(regularizers.r1_penalty(D, real, labels).item(), 1.5**2, rel_tol=1e-12)
    assert math.isclose(regularizers.gradient_penalty(D, real, fake, labels).item(), 0.5**2, rel_tol=1e-9)
    assert all(s is labels for s in seen)
    assert torch.equal(regularizers.adversarial(torch.arange(6.0).view(3, 2)), torch.tensor([0.0, 2.0, 4.0]))
    assert torch.equal(regularizers.adversarial(torch.arange(3.0)), torch.arange(3.0))


def test_clip_weights_clamps_every_parameter_in_place():
    torch.manual_seed(0)
    D = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.Linear(8, 1))
    before = [p.detach().clone() for p in D.parameters()]
    ids = [id(p) for p in D.parameters()]
    regularizers.clip_weights_(D, 0.05)
    for p, old in zip(D.parameters(), before, strict=True):
        assert p.abs().max() <= 0.05
        assert torch.equal(p, old.clamp(-0.05, 0.05))  # values inside the box are untouched
    assert ids == [id(p) for p in D.parameters()]  # in place: the optimizer still holds the same tensors
    assert any((old.abs() > 0.05).any() for old in before)  # the test clipped something


def test_instance_noise():
    x = torch.zeros(200, 1, 16, 16)
    assert regularizers.add_instance_noise(x, 0.0, torch.Generator()) is x
    noisy = regularizers.add_instance_noise(x, 0.3, torch.Generator().manual_seed(1))
    assert noisy.shape == x.shape
    assert abs(noisy.std().item() - 0.3) < 0.01  # 51,200 draws: the std's standard error is ~0.001
    again = regularizers.add_instance_noise(x, 0.3, torch.Generator().manual_seed(1))
    assert torch.equal(noisy, again)
    x = torch.ones(2, 3, requires_grad=True)
    regularizers.add_instance_noise(x, 0.1, None).sum().backward()
    assert torch.equal(x.grad, torch.ones(2, 3))


@pytest.mark.parametrize(("step", "expected"), [(0, 0.2), (250, 0.15), (500, 0.1), (1000, 0.0), (1500, 0.0)])
def test_annealed_is_linear_to_zero(step, expected):
    assert math.isclose(regularizers.annealed(0.2, step, 1000), expected, abs_tol=1e-12)
