"""Feature extractors: the shipped CNNs (28x28 grey, 64x64 colour; hash-checked), and Inception from the user's file."""

from __future__ import annotations

import copy
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from torch import Tensor, nn

from ganforge.errors import CheckpointError, ConfigError
from ganforge.io import file_digest, read_sha256sums
from ganforge.metrics import modes
from ganforge.metrics.inception import PYTORCH_FID_FILE, RESIZE, TORCH_FIDELITY_FILE, InceptionV3, load_inception

log = logging.getLogger(__name__)

WEIGHTS_DIR = Path(__file__).parent / "weights"
SHA256SUMS = "SHA256SUMS"
EXTRACTOR_FORMAT = "ganforge.extractor"
FEATURE_DIM = 128
# Shipped extractors: name -> weights file in WEIGHTS_DIR. "inception" reads a weights file the user has.
SHIPPED = {"mnist": "mnist.safetensors", "fashion-mnist": "fashion-mnist.safetensors", "emoji": "emoji.safetensors"}
KNOWN = (*SHIPPED, "inception")
COLOUR_SIDES = (32, 128)  # 3-channel images of these sides (inclusive) are scored with the emoji extractor
COLOUR_INPUT = (3, 64, 64)
# A group is "read" for coverage at this top probability on the colour extractor. The digits' 0.8 is wrong here: the
# group head saw each training emoji, and on the 367 held-out test emoji it reaches 0.8 so rarely (People & Body:
# 1% of its 217) that real unseen emoji covered 4 of 9 groups (0.7: 6/9, 0.6: 9/9 with one image to spare in two
# groups). 0.5, a majority read, gives the held-out emoji 9/9 with at least 6 images a group (docs/colour.md).
COLOUR_MODE_CONFIDENCE = 0.5
RESIZE_SHIPPED = "bilinear with antialiasing (torch interpolate) to {side}x{side} where sizes differ"
INCEPTION_ENV = "GANFORGE_INCEPTION_WEIGHTS"
INCEPTION_HELP = (
    f"ganforge never downloads it. Use torch-fidelity's {TORCH_FIDELITY_FILE} (github.com/toshas/torch-fidelity "
    f"release v0.2.0) or pytorch-fid's {PYTORCH_FID_FILE} (github.com/mseitzer/pytorch-fid release fid_weights), "
    f"which those tools keep in ~/.cache/torch/hub/checkpoints; pass --inception-weights FILE or set {INCEPTION_ENV}"
)


class DigitNet(nn.Module):
    """A small CNN: (B, 1, 28, 28) in [-1, 1] -> penultimate features (B, 128) and logits (B, 10).

    Three 3x3 conv blocks (32, 64, 128 channels; BN, ReLU, 2x2 max-pool), then a 1152 -> 128 linear
    layer with BN and ReLU: those 128 numbers are the features that FID and friends use.
    """

    def __init__(self, num_classes: int = 10, feature_dim: int = FEATURE_DIM) -> None:
        super().__init__()
        blocks: list[nn.Module] = []
        for c_in, c_out in ((1, 32), (32, 64), (64, 128)):
            blocks += [
                nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
                nn.BatchNorm2d(c_out),
                nn.ReLU(),
                nn.MaxPool2d(2),
            ]
        self.body = nn.Sequential(*blocks, nn.Flatten())  # 28 -> 14 -> 7 -> 3: (B, 128 * 3 * 3)
        self.embed = nn.Sequential(nn.Linear(128 * 9, feature_dim, bias=False), nn.BatchNorm1d(feature_dim), nn.ReLU())
        self.dropout = nn.Dropout(0.3)
        self.head = nn.Linear(feature_dim, num_classes)

    def features(self, x: Tensor) -> Tensor:
        return self.embed(self.body(x))

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """(features (B, 128), logits (B, num_classes))."""
        h = self.features(x)
        return h, self.head(self.dropout(h))


class ColourNet(nn.Module):
    """A small CNN for colour images: (B, 3, 64, 64) in [-1, 1] -> features (B, 96) and group logits (B, 9).

    Four 3x3 conv blocks (16, 32, 64, 128 channels; BN, ReLU, 2x2 max-pool: 64 -> 4), a 2048 -> 128 linear
    layer with BN and ReLU (the embedding), and three heads on the embedding: the emoji group (what `forward`
    returns, so the mode metrics count groups), the subgroup and the skin tone (training targets).

    The features are not the embedding but the spatial means of the ReLU outputs of blocks 2 and 3
    (32 + 64 channels), each standardized by its mean and std over the training split (stored buffers):
    how things are drawn (colours, edges, textures, parts). The embedding says mostly *which* emoji an
    image is; train and test are different emoji, so on it the floor is high and N(0, 0.05) noise scored
    below the floor; adding block 4 halved the noise rungs' margin (docs/colour.md, bench/colour_features.py).
    """

    TAPS = (6, 10)  # indices in self.body of the ReLUs of blocks 2 and 3
    POOLED_DIM = 32 + 64
    feature_mean: Tensor
    feature_std: Tensor

    def __init__(self, num_groups: int = 9, num_subgroups: int = 99, num_tones: int = 6) -> None:
        super().__init__()
        blocks: list[nn.Module] = []
        for c_in, c_out in ((3, 16), (16, 32), (32, 64), (64, 128)):
            conv = nn.Conv2d(c_in, c_out, 3, padding=1, bias=False)
            blocks += [conv, nn.BatchNorm2d(c_out), nn.ReLU(), nn.MaxPool2d(2)]
        self.body = nn.Sequential(*blocks, nn.Flatten())  # (B, 128 * 4 * 4)
        self.embed = nn.Sequential(nn.Linear(128 * 16, FEATURE_DIM, bias=False), nn.BatchNorm1d(FEATURE_DIM), nn.ReLU())
        self.dropout = nn.Dropout(0.3)
        self.head = nn.Linear(FEATURE_DIM, num_groups)
        self.subgroup_head = nn.Linear(FEATURE_DIM, num_subgroups)
        self.tone_head = nn.Linear(FEATURE_DIM, num_tones)
        self.register_buffer("feature_mean", torch.zeros(self.POOLED_DIM))
        self.register_buffer("feature_std", torch.ones(self.POOLED_DIM))

    def pooled(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """(spatial means of the tapped ReLUs (B, 96), unstandardized; the flattened body output (B, 2048))."""
        taps = []
        for k, layer in enumerate(self.body):
            x = layer(x)
            if k in self.TAPS:
                taps.append(x.mean(dim=(2, 3)))
        return torch.cat(taps, 1), x

    def heads(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """(embedding, group logits, subgroup logits, tone logits): what training reads."""
        h = self.embed(self.body(x))
        d = self.dropout(h)
        return h, self.head(d), self.subgroup_head(d), self.tone_head(d)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """(features (B, 96), group logits (B, num_groups))."""
        pooled, flat = self.pooled(x)
        features = (pooled - self.feature_mean) / self.feature_std
        return features, self.head(self.dropout(self.embed(flat)))


@dataclass
class Extractor:
    """A loaded extractor: `forward(x) -> (features, logits)` on (B, C, H, W) inputs of `input_shape`."""

    name: str
    net: nn.Module
    sha256: str
    input_shape: tuple[int, int, int]  # (C, H, W) it expects; H = W = 0: any size
    feature_dim: int
    num_classes: int
    metadata: dict[str, str]
    label: str = ""  # how scores name it: "FID (mnist features)", "FID (Inception)"
    resize: str = ""  # what happens to images of another size (default: the shipped extractors' resize to their side)
    batch_limit: int | None = None  # images a forward pass at most (Inception: 64, as torch-fidelity; bounds memory)
    channels_last: bool = False  # the net runs on channels_last inputs (the shipped CNNs, see for_inference)
    mode_confidence: float = modes.CONFIDENCE  # top probability at which a class counts as read for coverage

    def __post_init__(self) -> None:
        self.label = self.label or f"{self.name} features"
        self.resize = self.resize or RESIZE_SHIPPED.format(side=self.input_shape[1])


def recorded_hashes(weights_dir: Path = WEIGHTS_DIR) -> dict[str, str]:
    """file name -> sha256, from the package's SHA256SUMS (`<hex>  <name>` lines)."""
    return read_sha256sums(weights_dir / SHA256SUMS)


def file_sha256(path: Path) -> str:
    return file_digest(path, "sha256")


def resolve_extractor_name(name: str | None, data: str, shape: tuple[int, ...] | None = None) -> str:
    """The extractor for a data spec and image shape (C, H, W), when known.

    emoji -> 'emoji'; fashion-mnist -> 'fashion-mnist'; mnist, mnist-sample, stacked-mnist (read per channel)
    and idx:DIR -> 'mnist'; any other 3-channel images of 32 to 128 px (COLOUR_SIDES) -> 'emoji'; the rest -> 'mnist'.
    """
    if name is not None:
        if name not in KNOWN:
            raise ConfigError(f"unknown extractor {name!r}; use one of {', '.join(KNOWN)}")
        return name
    if data.partition(":")[0] == "emoji":
        return "emoji"
    if data.startswith("fashion-mnist"):
        return "fashion-mnist"
    is_digits = data in ("mnist", "mnist-sample", "stacked-mnist") or data.startswith("idx:")
    if not is_digits and shape is not None and shape[0] == 3 and COLOUR_SIDES[0] <= shape[-1] <= COLOUR_SIDES[1]:
        log.info("scoring %dx%d colour images of %r with the emoji extractor (pass --extractor NAME to choose)",
                 shape[-1], shape[-1], data)  # fmt: skip
        return "emoji"
    if data not in ("mnist", "mnist-sample", "stacked-mnist") and not data.startswith("idx:"):
        log.info(
            "no extractor is made for data %r; using the MNIST one (pass --extractor NAME, or extractor= in Python)",
            data,
        )
    return "mnist"


def load_extractor(
    name: str,
    *,
    weights_dir: Path | None = None,
    device: str | torch.device = "cpu",
    inception_weights: str | Path | None = None,
) -> Extractor:
    """Load a shipped extractor, checking its file against the sha256 the package records.

    "inception": the FID Inception network with the weights file `inception_weights` (see
    `inception_weights_path` for where else it is looked for).
    """
    if name == "inception":
        return _load_inception(inception_weights, device)
    if name not in SHIPPED:
        raise ConfigError(f"unknown extractor {name!r}; use one of {', '.join(KNOWN)}")
    weights_dir = WEIGHTS_DIR if weights_dir is None else Path(weights_dir)
    path = weights_dir / SHIPPED[name]
    retrain = f"python -m ganforge.metrics.train_extractor {name}"
    if not path.is_file():
        raise CheckpointError(f"extractor weights {path} are missing; reinstall ganforge or run `{retrain}`")
    expected = recorded_hashes(weights_dir).get(path.name)
    actual = file_sha256(path)
    if expected is None:
        raise CheckpointError(f"no sha256 is recorded for {path} in {weights_dir / SHA256SUMS}; run `{retrain}`")
    if actual != expected:
        raise CheckpointError(
            f"extractor weights {path} have sha256 {actual[:12]}..., but the package records {expected[:12]}...; "
            f"the file is damaged or was replaced: reinstall ganforge or run `{retrain}`"
        )
    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = dict(f.metadata() or {})
            state = {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError) as e:
        raise CheckpointError(f"extractor weights {path} cannot be read ({e}); reinstall ganforge") from e
    if metadata.get("format") != EXTRACTOR_FORMAT:
        raise CheckpointError(f"{path} is not a ganforge extractor file; run `{retrain}`")
    num_classes = len(json.loads(metadata.get("class_names", "[]"))) or 10
    net: nn.Module
    confidence = modes.CONFIDENCE
    if metadata.get("arch", "").startswith("ColourNet"):
        subgroups, tones = (len(json.loads(metadata[key])) for key in ("subgroup_names", "tone_names"))
        net, input_shape, feature_dim = ColourNet(num_classes, subgroups, tones), COLOUR_INPUT, ColourNet.POOLED_DIM
        confidence = COLOUR_MODE_CONFIDENCE
    else:
        net, input_shape, feature_dim = DigitNet(num_classes=num_classes), (1, 28, 28), FEATURE_DIM
    net.load_state_dict(state, strict=True)
    net = for_inference(net).to(device)
    return Extractor(
        name,
        net,
        actual,
        input_shape,
        feature_dim,
        num_classes,
        metadata,
        channels_last=True,
        mode_confidence=confidence,
    )


def for_inference(net: nn.Module) -> nn.Module:
    """net in eval mode with every BatchNorm folded into the conv or linear layer before it, in channels_last.

    The same function to float rounding (features within ~1e-6 relative) at about 1.4x the speed on a CPU (one
    thread, 1,000 digits: 477 -> 336 ms): a BatchNorm in eval mode is an affine map per channel, so it moves
    into the weights and bias of the layer it follows and its own pass over the activations goes away.
    Inference only: the folded net must not be trained (train_extractor trains a fresh DigitNet/ColourNet).
    """
    net.eval()
    for module in net.modules():
        if not isinstance(module, nn.Sequential):
            continue
        for k in range(1, len(module)):
            layer, norm = module[k - 1], module[k]
            if isinstance(norm, nn.modules.batchnorm._BatchNorm) and isinstance(layer, (nn.Conv2d, nn.Linear)):
                module[k - 1], module[k] = _folded(layer, norm), nn.Identity()
    return net.to(memory_format=torch.channels_last)  # type: ignore[call-overload]


@torch.no_grad()
def _folded(layer: nn.Conv2d | nn.Linear, norm: nn.modules.batchnorm._BatchNorm) -> nn.Conv2d | nn.Linear:
    """layer followed by norm (eval mode), as one layer of the same kind with a bias."""
    assert norm.running_mean is not None and norm.running_var is not None
    scale = torch.rsqrt(norm.running_var + norm.eps)
    if norm.weight is not None:
        scale = scale * norm.weight
    shift = -norm.running_mean * scale + (norm.bias if norm.bias is not None else 0)
    bias = layer.bias * scale + shift if layer.bias is not None else shift
    fused = copy.deepcopy(layer)
    shape = (-1,) + (1,) * (layer.weight.dim() - 1)
    fused.weight = nn.Parameter(layer.weight * scale.reshape(shape))
    fused.bias = nn.Parameter(bias)
    return fused.to(layer.weight.device).eval()


class _InceptionOnFloats(nn.Module):
    """[-1, 1] floats (B, 1 or 3, H, W) -> the FID Inception's (pool3 (B, 2048), logits (B, 1008)).

    The floats are quantised to uint8 as ganforge writes its PNGs (round((x + 1) * 127.5)), grey is
    repeated to RGB, and the network resizes and normalises as torch-fidelity does (inception.py).
    """

    def __init__(self, net: InceptionV3) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        pixels = ((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
        if pixels.size(1) == 1:
            pixels = pixels.expand(-1, 3, -1, -1)
        return self.net(pixels)


def inception_weights_path(path: str | Path | None = None) -> Path:
    """The Inception weights file: `path`, else $GANFORGE_INCEPTION_WEIGHTS, else torch-fidelity's or
    pytorch-fid's file where torch.hub caches downloads ($TORCH_HOME/hub/checkpoints). Never downloads.
    """
    if path is None and os.environ.get(INCEPTION_ENV):
        path = os.environ[INCEPTION_ENV]
    if path is not None:
        path = Path(path).expanduser()
        if not path.is_file():
            raise ConfigError(f"Inception weights {path} do not exist or are not a file; {INCEPTION_HELP}")
        return path
    hub = Path(os.environ.get("TORCH_HOME", Path.home() / ".cache" / "torch")).expanduser() / "hub" / "checkpoints"
    for name in (TORCH_FIDELITY_FILE, PYTORCH_FID_FILE):
        if (hub / name).is_file():
            return hub / name
    raise ConfigError(f"extractor 'inception' needs the FID Inception weights file; {INCEPTION_HELP}")


def _load_inception(path: str | Path | None, device: str | torch.device) -> Extractor:
    """The FID Inception network with the user's weights file; ganforge ships and downloads no Inception weights."""
    path = inception_weights_path(path)
    net = _InceptionOnFloats(load_inception(path)).to(device).eval()
    metadata = {"weights": str(path), "resize": RESIZE}
    return Extractor(
        "inception", net, file_sha256(path), (3, 0, 0), 2048, 1008, metadata, "Inception", RESIZE, batch_limit=64
    )
