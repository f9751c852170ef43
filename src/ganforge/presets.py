"""The named presets: each a short recipe, built on another with replace() where it can be.

Why each recipe is what it is (the screens that found it, with their figures and commands) is in the
experiments log, docs/experiments.md; the link beside each preset points at its section.
"""

from __future__ import annotations

from dataclasses import replace

from ganforge.config import ModelConfig, TrainConfig
from ganforge.errors import ConfigError

# The article's MLP GAN, its bugs fixed: G 100 -> 256 -> 256 -> 784, D 784 -> 256 -> 256 -> 1, BCE with the
# non-saturating G loss, Adam 2e-4 (0.5, 0.999), batch 128, 10,000 steps (TrainConfig's defaults).
SEED = TrainConfig(
    model=ModelConfig(arch="mlp", image_size=28, channels=1, z_dim=100, width=256),
    preset="seed",
    out_dir="runs/seed",
)

# The seed networks, trained so they do not collapse: R1 on real digits, minibatch std in D, EMA of G.
# docs/experiments.md#seed-stable
SEED_STABLE = replace(
    SEED,
    model=replace(SEED.model, minibatch_std=True),
    preset="seed-stable",
    r1=10.0,
    reg_every=4,
    ema_decay=0.999,
    out_dir="runs/seed-stable",
)

# DCGAN (Radford et al. 2016) sized for a CPU: 32 base channels, z 64, Adam 4e-4, EMA of G.
DCGAN = TrainConfig(
    model=ModelConfig(arch="dcgan", image_size=28, channels=1, z_dim=64, width=32),
    preset="dcgan",
    batch_size=64,
    steps=10_000,
    lr_g=4e-4,
    lr_d=4e-4,
    ema_decay=0.999,
    out_dir="runs/dcgan",
)

# Class-conditional DCGAN: conditional BatchNorm in G, a projection D (Miyato & Koyama 2018).
CGAN = replace(DCGAN, model=replace(DCGAN.model, num_classes=10), preset="cgan", out_dir="runs/cgan")

# The best digits in under 10 CPU minutes: cgan plus lazy R1 (Mescheder et al. 2018) and a linear lr decay over
# the second half. docs/experiments.md#mnist-hq
MNIST_HQ = replace(
    CGAN,
    preset="mnist-hq",
    steps=16_000,
    r1=1.0,
    reg_every=8,
    lr_decay="linear",
    lr_decay_start=0.5,
    out_dir="runs/mnist-hq",
)

# Stacked MNIST (1,000 modes: three digits as R, G, B), unconditional: a D twice G's width with minibatch std and a
# coarse critic on the 7x7-pooled image (loss weight 2), Adam (0, 0.99), constant lr. docs/experiments.md#stacked-mnist
STACKED_MNIST = replace(
    MNIST_HQ,
    model=replace(MNIST_HQ.model, channels=3, minibatch_std=True, num_classes=0, d_width=64, coarse_d=7),
    preset="stacked-mnist",
    data="stacked-mnist",
    steps=12_000,
    coarse_weight=2.0,
    beta1=0.0,
    beta2=0.99,
    lr_decay="none",
    out_dir="runs/stacked-mnist",
)

# Fashion-MNIST's 60,000 training images with the mnist-hq networks, constant lr. docs/experiments.md#fashion-mnist
FASHION_MNIST = replace(
    MNIST_HQ, preset="fashion-mnist", data="fashion-mnist", steps=24_000, lr_decay="none", out_dir="runs/fashion-mnist"
)

# 64x64 colour: the 3,288 training-split Noto emoji, conditional on their 9 groups (`--num-classes 0`: unconditional).
# The mnist-hq recipe (DCGAN, lazy R1 1, EMA, linear lr decay over the second half) at 64 px with z 128, the groups
# drawn by the square root of their sizes (People & Body is 59% of the set), no augmentation (ADA and AC-GAN were
# worse in the screens); 5,000 steps take ~21 minutes on one CPU core, ~13 on two. docs/experiments.md#emoji-64
EMOJI_64 = replace(
    MNIST_HQ,
    model=replace(MNIST_HQ.model, image_size=64, channels=3, z_dim=128, num_classes=9),
    preset="emoji-64",
    data="emoji",
    steps=5_000,
    class_balance=0.5,
    checkpoint_every=500,
    sample_every=500,
    out_dir="runs/emoji-64",
)

# WGAN-GP (Gulrajani et al. 2017): critic loss, gradient penalty 10, 5 critic steps a G step, Adam (0, 0.9); a
# ResNet D, which has no BatchNorm for the penalty to see.
WGAN_GP = TrainConfig(
    model=ModelConfig(arch="resnet", image_size=28, channels=1, z_dim=64, width=32),
    preset="wgan-gp",
    loss="wgan",
    gp=10.0,
    n_critic=5,
    batch_size=64,
    steps=2_000,
    lr_g=1e-4,
    lr_d=1e-4,
    beta1=0.0,
    beta2=0.9,
    ema_decay=0.999,
    sample_every=200,
    checkpoint_every=200,
    log_every=20,
    out_dir="runs/wgan-gp",
)

# SNGAN (Miyato et al. 2018): ResNet G and D, spectral norm in D, the hinge loss, Adam 2e-4 (0, 0.9).
SNGAN = replace(
    WGAN_GP,
    model=replace(WGAN_GP.model, spectral_norm=True),
    preset="sngan",
    loss="hinge",
    gp=0.0,
    n_critic=1,
    steps=5_000,
    lr_g=2e-4,
    lr_d=2e-4,
    sample_every=TrainConfig.sample_every,
    checkpoint_every=TrainConfig.checkpoint_every,
    log_every=TrainConfig.log_every,
    out_dir="runs/sngan",
)

# A ring of 8 Gaussians (std 0.02): small MLPs with a linear output, D on pairs (PacGAN), R1 0.1, Adam 1e-3
# (0, 0.99), EMA. docs/experiments.md#toy-ring
TOY_RING = TrainConfig(
    model=ModelConfig(arch="mlp", image_size=1, channels=2, z_dim=16, width=128, out_activation="none", pac=2),
    preset="toy-ring",
    data="toy:ring8",
    batch_size=256,
    steps=14_000,
    lr_g=1e-3,
    lr_d=1e-3,
    beta1=0.0,
    beta2=0.99,
    r1=0.1,
    ema_decay=0.999,
    log_every=100,
    sample_every=0,
    checkpoint_every=2_500,
    out_dir="runs/toy-ring",
)

# A 5x5 grid of 25 Gaussians (std 0.05): a 2-D latent, D of half G's width with minibatch std, annealed instance
# noise, Adam 2e-3 (0, 0.99), linear lr decay over the second half. docs/experiments.md#toy-grid
TOY_GRID = replace(
    TOY_RING,
    model=replace(TOY_RING.model, z_dim=2, d_width=64, minibatch_std=True, pac=1),
    preset="toy-grid",
    data="toy:grid25",
    steps=18_000,
    lr_g=2e-3,
    lr_d=2e-3,
    r1=0.0,
    instance_noise=0.3,
    lr_decay="linear",
    out_dir="runs/toy-grid",
)

PRESETS: dict[str, TrainConfig] = {
    cfg.preset: cfg
    for cfg in (
        SEED,
        SEED_STABLE,
        DCGAN,
        MNIST_HQ,
        STACKED_MNIST,
        FASHION_MNIST,
        EMOJI_64,
        WGAN_GP,
        SNGAN,
        CGAN,
        TOY_RING,
        TOY_GRID,
    )
}


def get_preset(name: str) -> TrainConfig:
    """Look up a preset by name."""
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}; use one of {', '.join(sorted(PRESETS))}")
    return PRESETS[name]
