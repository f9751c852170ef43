import math

import pytest
import torch

from ganforge import losses

KINDS = ("nonsaturating", "minimax", "hinge", "lsgan", "wgan", "ragan")


def _bce_reference(p_real, p_fake):
    return -(torch.log(p_real).mean() + torch.log(1 - p_fake).mean())


def _logits(seed=0, n=64):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, generator=g, dtype=torch.float64) * 2, torch.randn(n, generator=g, dtype=torch.float64) * 2


def test_d_loss_matches_binary_cross_entropy():
    logits_real, logits_fake = torch.randn(64), torch.randn(64)
    expected = _bce_reference(torch.sigmoid(logits_real), torch.sigmoid(logits_fake))
    for kind in ("nonsaturating", "minimax"):
        assert torch.allclose(losses.d_loss(logits_real, logits_fake, kind=kind), expected, atol=1e-5)


def test_g_losses_have_the_article_formulas_and_signs():
    logits_fake = torch.randn(64)
    p = torch.sigmoid(logits_fake)
    assert torch.allclose(losses.g_loss(logits_fake, kind="nonsaturating"), -torch.log(p).mean(), atol=1e-5)
    assert torch.allclose(losses.g_loss(logits_fake, kind="minimax"), torch.log(1 - p).mean(), atol=1e-5)
    assert torch.allclose(losses.g_loss(logits_fake, kind="hinge"), -logits_fake.mean())


def test_lsgan_wgan_hinge_match_their_formulas():
    lr, lf = _logits(1)
    d = losses.d_loss
    assert torch.allclose(d(lr, lf, kind="lsgan"), 0.5 * ((lr - 1) ** 2).mean() + 0.5 * (lf**2).mean())
    assert torch.allclose(losses.g_loss(lf, kind="lsgan"), 0.5 * ((lf - 1) ** 2).mean())
    assert torch.allclose(d(lr, lf, kind="wgan"), lf.mean() - lr.mean())
    assert torch.allclose(losses.g_loss(lf, kind="wgan"), -lf.mean())
    hinge = torch.clamp(1 - lr, min=0).mean() + torch.clamp(1 + lf, min=0).mean()
    assert torch.allclose(d(lr, lf, kind="hinge"), hinge)


def test_ragan_matches_its_formula_with_probabilities():
    # In probability form (Jolicoeur-Martineau 2018): D_Ra(x, y) = sigmoid(C(x) - E[C(y)]).
    lr, lf = _logits(2)
    d_real = torch.sigmoid(lr - lf.mean())  # how much more real than the average fake
    d_fake = torch.sigmoid(lf - lr.mean())
    expected_d = -torch.log(d_real).mean() - torch.log(1 - d_fake).mean()
    expected_g = -torch.log(d_fake).mean() - torch.log(1 - d_real).mean()
    assert torch.allclose(losses.d_loss(lr, lf, kind="ragan"), expected_d)
    assert torch.allclose(losses.g_loss(lf, kind="ragan", logits_real=lr), expected_g)


def test_ragan_g_loss_needs_the_real_logits():
    with pytest.raises(ValueError, match="logits_real"):
        losses.g_loss(torch.zeros(4), kind="ragan")


def test_unknown_kind_raises():
    with pytest.raises(ValueError, match="unknown loss"):
        losses.d_loss(torch.zeros(4), torch.zeros(4), kind="bogus")
    with pytest.raises(ValueError, match="unknown loss"):
        losses.g_loss(torch.zeros(4), kind="bogus")


def test_label_smoothing_is_bce_with_a_soft_target():
    lr, lf = _logits(3)
    t = 0.9
    p = torch.sigmoid(lr)
    soft = -(t * torch.log(p) + (1 - t) * torch.log(1 - p)).mean() - torch.log(1 - torch.sigmoid(lf)).mean()
    for kind in ("nonsaturating", "minimax"):
        assert torch.allclose(losses.d_loss(lr, lf, kind=kind, real_label=t), soft)
    # The smoothed optimum for a real logit is log(t / (1 - t)), not +infinity: D stops growing overconfident.
    fake = torch.tensor([-50.0], dtype=torch.float64)
    for offset, sign in ((0.0, 0), (0.5, 1), (-0.5, -1)):
        logit = torch.tensor([math.log(t / (1 - t)) + offset], dtype=torch.float64, requires_grad=True)
        (grad,) = torch.autograd.grad(losses.d_loss(logit, fake, kind="nonsaturating", real_label=t), logit)
        assert abs(grad.item()) < 1e-12 if sign == 0 else torch.sign(grad).item() == sign
    lsq = 0.5 * ((lr - t) ** 2).mean() + 0.5 * (lf**2).mean()
    assert torch.allclose(losses.d_loss(lr, lf, kind="lsgan", real_label=t), lsq)
    a = lr - lf.mean()
    pa = torch.sigmoid(a)
    ra = -(t * torch.log(pa) + (1 - t) * torch.log(1 - pa)).mean() - torch.log(1 - torch.sigmoid(lf - lr.mean())).mean()
    assert torch.allclose(losses.d_loss(lr, lf, kind="ragan", real_label=t), ra)


@pytest.mark.parametrize("kind", ["hinge", "wgan"])
def test_label_smoothing_is_refused_where_it_has_no_meaning(kind):
    with pytest.raises(ValueError, match="label smoothing"):
        losses.d_loss(torch.zeros(4), torch.zeros(4), kind=kind, real_label=0.9)


@pytest.mark.parametrize("kind", KINDS)
def test_losses_and_gradients_are_finite_for_extreme_logits(kind):
    for value in (100.0, -100.0):
        logits_real = torch.full((4,), value, requires_grad=True)
        logits_fake = torch.full((4,), -value, requires_grad=True)
        for real_label in (1.0, 0.9) if kind in losses.SMOOTHABLE else (1.0,):
            loss = losses.d_loss(logits_real, logits_fake, kind=kind, real_label=real_label) + losses.g_loss(
                logits_fake, kind=kind, logits_real=logits_real
            )
            grads = torch.autograd.grad(loss, [logits_real, logits_fake])
            assert torch.isfinite(loss)
            assert all(torch.isfinite(g).all() for g in grads)
    big = torch.tensor([1e4, -1e4])
    assert torch.isfinite(losses.d_loss(big, -big, kind=kind))
    assert torch.isfinite(losses.g_loss(big, kind=kind, logits_real=-big))


def test_minimax_value_at_the_optimum_is_minus_log_4():
    # p_g = p_data makes the optimal D output 1/2 everywhere (logit 0): V(D, G) = -log 4 (Goodfellow et al., Thm 1).
    zeros = torch.zeros(16, dtype=torch.float64)
    value = -losses.d_loss(zeros, zeros, kind="minimax")
    assert math.isclose(value.item(), -math.log(4), rel_tol=1e-12)


def test_optimal_d_gives_minus_log_4_plus_twice_the_jsd():
    # Discrete p_data, p_g on 4 points, as samples in proportion. D*(x) = p_data / (p_data + p_g), i.e. logit
    # log(p_data / p_g), and V(D*, G) = -log 4 + 2 JSD(p_data || p_g) (Goodfellow et al., Prop. 1 and Thm 1).
    p_data = torch.tensor([0.4, 0.3, 0.2, 0.1], dtype=torch.float64)
    p_g = torch.tensor([0.1, 0.2, 0.3, 0.4], dtype=torch.float64)
    counts_data, counts_g = (p_data * 10).round().long(), (p_g * 10).round().long()
    logit_star = torch.log(p_data / p_g)
    logits_real = logit_star.repeat_interleave(counts_data)
    logits_fake = logit_star.repeat_interleave(counts_g)
    m = (p_data + p_g) / 2
    jsd = 0.5 * (p_data * torch.log(p_data / m)).sum() + 0.5 * (p_g * torch.log(p_g / m)).sum()
    value = -losses.d_loss(logits_real, logits_fake, kind="minimax")
    assert math.isclose(value.item(), -math.log(4) + 2 * jsd.item(), rel_tol=1e-12)
    # ... and it is D's optimum: moving any logit makes D's loss larger.
    for i in range(4):
        for delta in (-0.1, 0.1):
            moved = logit_star.clone()
            moved[i] += delta
            loss = losses.d_loss(
                moved.repeat_interleave(counts_data), moved.repeat_interleave(counts_g), kind="minimax"
            )
            assert loss > -value


def test_nonsaturating_gradient_survives_where_minimax_vanishes():
    # D confidently rejects the fakes (D(G(z)) = sigmoid(-10) ~ 5e-5): minimax's gradient is ~1e-4 times smaller.
    logits = torch.full((4,), -10.0, requires_grad=True)
    (g_ns,) = torch.autograd.grad(losses.g_loss(logits, kind="nonsaturating"), logits)
    (g_mm,) = torch.autograd.grad(losses.g_loss(logits, kind="minimax"), logits)
    assert g_ns.abs().min() > 0.2  # 1/B * (1 - sigmoid(-10)) ~ 0.25
    assert g_mm.abs().max() < 2e-5  # 1/B * sigmoid(-10) ~ 1.1e-5
    assert (g_ns.abs() / g_mm.abs()).min() > 1e4
    # Both push the fake logits up (G descends its loss: the gradient is negative).
    assert (g_ns < 0).all() and (g_mm < 0).all()
    # At logit -100 minimax's gradient underflows to 0 outright.
    logits = torch.full((4,), -100.0, requires_grad=True)
    (g_mm,) = torch.autograd.grad(losses.g_loss(logits, kind="minimax"), logits)
    assert g_mm.abs().max() < 1e-30


def test_d_loss_is_lower_when_d_is_right():
    right = losses.d_loss(torch.full((8,), 5.0), torch.full((8,), -5.0), kind="nonsaturating")
    wrong = losses.d_loss(torch.full((8,), -5.0), torch.full((8,), 5.0), kind="nonsaturating")
    assert right < 0.05 < 5 < wrong
    assert math.isclose(losses.d_loss(torch.zeros(8), torch.zeros(8), kind="hinge").item(), 2.0)


@pytest.mark.parametrize("kind", KINDS)
def test_d_loss_falls_as_d_separates(kind):
    good = losses.d_loss(torch.full((8,), 3.0), torch.full((8,), -3.0), kind=kind)
    bad = losses.d_loss(torch.full((8,), -3.0), torch.full((8,), 3.0), kind=kind)
    assert good < bad


@pytest.mark.parametrize("kind", KINDS)
def test_g_loss_falls_as_d_believes_fakes(kind):
    real = torch.zeros(8)
    believed = losses.g_loss(torch.full((8,), 1.0), kind=kind, logits_real=real)
    rejected = losses.g_loss(torch.full((8,), -3.0), kind=kind, logits_real=real)
    assert believed < rejected


def test_class_loss_is_cross_entropy():
    class_logits = torch.tensor([[2.0, 0.0, -1.0], [0.0, 0.0, 0.0]])
    labels = torch.tensor([0, 2])
    expected = -(torch.log_softmax(class_logits, 1)[0, 0] + torch.log_softmax(class_logits, 1)[1, 2]) / 2
    assert torch.allclose(losses.class_loss(class_logits, labels), expected)
    assert losses.class_loss(class_logits * 10, labels) < losses.class_loss(class_logits, torch.tensor([2, 0]))
