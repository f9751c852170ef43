import math

import pytest
import torch

from ganforge import losses


def _bce_reference(p_real, p_fake):
    return -(torch.log(p_real).mean() + torch.log(1 - p_fake).mean())


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


def test_losses_are_finite_for_extreme_logits():
    big = torch.tensor([1e4, -1e4])
    for kind in ("nonsaturating", "minimax", "hinge"):
        assert torch.isfinite(losses.d_loss(big, -big, kind=kind))
        assert torch.isfinite(losses.g_loss(big, kind=kind))
    # A confident D (fakes at logit -100) still gives the non-saturating G a gradient; minimax's vanishes.
    logits = torch.full((4,), -100.0, requires_grad=True)
    losses.g_loss(logits, kind="nonsaturating").backward()
    assert logits.grad.abs().min() > 0.2
    logits.grad = None
    losses.g_loss(logits, kind="minimax").backward()
    assert logits.grad.abs().max() < 1e-30


def test_d_loss_is_lower_when_d_is_right():
    right = losses.d_loss(torch.full((8,), 5.0), torch.full((8,), -5.0), kind="nonsaturating")
    wrong = losses.d_loss(torch.full((8,), -5.0), torch.full((8,), 5.0), kind="nonsaturating")
    assert right < 0.05 < 5 < wrong
    assert math.isclose(losses.d_loss(torch.zeros(8), torch.zeros(8), kind="hinge").item(), 2.0)


@pytest.mark.parametrize("kind", ["nonsaturating", "minimax", "hinge"])
def test_g_loss_falls_as_d_believes_fakes(kind):
    assert losses.g_loss(torch.full((8,), 3.0), kind=kind) < losses.g_loss(torch.full((8,), -3.0), kind=kind)
