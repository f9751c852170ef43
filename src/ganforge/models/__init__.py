"""Generator and discriminator networks, built from a ModelConfig."""

from __future__ import annotations

from torch import Tensor, nn

from ganforge.config import ModelConfig
from ganforge.models.base import Discriminator, Generator
from ganforge.models.dcgan import DCGANDiscriminator, DCGANGenerator
from ganforge.models.layers import MinibatchStd, apply_spectral_norm
from ganforge.models.mlp import MLPDiscriminator, MLPGenerator
from ganforge.models.resnet import ResNetDiscriminator, ResNetGenerator

_GENERATORS: dict[str, type[Generator]] = {"mlp": MLPGenerator, "dcgan": DCGANGenerator, "resnet": ResNetGenerator}
_DISCRIMINATORS: dict[str, type[Discriminator]] = {
    "mlp": MLPDiscriminator,
    "dcgan": DCGANDiscriminator,
    "resnet": ResNetDiscriminator,
}


def build_generator(cfg: ModelConfig) -> Generator:
    """G: (z (B, z_dim), labels (B,) or None) -> images (B, C, H, W)."""
    G = _GENERATORS[cfg.arch](cfg)
    if cfg.spectral_norm_g:
        apply_spectral_norm(G, embeddings=False)
    return G


def build_discriminator(cfg: ModelConfig) -> Discriminator:
    """D: (images (B, C, H, W), labels (B,) or None) -> logits (B,), or (B, 1 + classes) for AC-GAN."""
    D = _DISCRIMINATORS[cfg.arch](cfg)
    if cfg.spectral_norm:
        apply_spectral_norm(D, embeddings=True)
    return D


def split_logits(out: Tensor, model: ModelConfig | None = None) -> tuple[Tensor, Tensor | None]:
    """D's output -> (adversarial logits (B,) or (B, 2), class logits (B, classes) or None).

    AC-GAN's D returns (B, 1 + classes) with the adversarial logit in column 0; a D with a coarse critic
    (model.coarse_d) returns (B, 2), two adversarial logits that the loss scores alike; every other D
    returns (B,). Without `model`, a 2-D output is read as AC-GAN's.
    """
    if out.dim() == 1 or (model is not None and model.coarse_d):
        return out, None
    return out[:, 0], out[:, 1:]


def main_logits(logits: Tensor) -> Tensor:
    """The main D's logits (B,) from split_logits' adversarial logits: column 0 when a coarse critic adds one."""
    return logits[:, 0] if logits.dim() == 2 else logits


def needs_separate_batches(model: nn.Module | ModelConfig) -> bool:
    """Whether D must see real and fake in separate forwards: BatchNorm or minibatch std mix a batch's samples."""
    if isinstance(model, ModelConfig):
        return model.minibatch_std or (model.arch == "dcgan" and not model.spectral_norm)
    return any(isinstance(m, (nn.modules.batchnorm._BatchNorm, MinibatchStd)) for m in model.modules())


__all__ = [
    "Discriminator",
    "Generator",
    "build_discriminator",
    "build_generator",
    "main_logits",
    "needs_separate_batches",
    "split_logits",
]
