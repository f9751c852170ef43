"""The FID Inception network (TF graph 2015-12-05): uint8 images -> pool3 features (B, 2048) and logits (B, 1008).

This is the architecture that TTUR's FID code, pytorch-fid and torch-fidelity all run: torchvision's
InceptionV3 layout with the changes that make it compute what the TensorFlow graph computes. The
average pools inside the A, C and first E blocks leave the zero padding out of their mean; the last
E block pools with a max instead of an average; BatchNorm uses eps 0.001; the classifier has 1,008
outputs. ganforge holds no weights: `load_inception` reads the file a torch-fidelity or pytorch-fid
user already has, and the parameter names of both files are torchvision's, which this module keeps.

Preprocessing follows torch-fidelity's (0.4.0) exactly, so that the same images give the same features:
uint8 RGB -> float32 -> bilinear resize to 299x299 as TF 1.x's `resize_bilinear(align_corners=False)`
computes it (no half-pixel offset, no antialiasing) -> (x - 128) / 128.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ganforge.errors import CheckpointError

SIZE = 299  # the graph's input side
FEATURE_DIM = 2048  # pool3
NUM_CLASSES = 1008  # the 2015 graph's classifier outputs (ImageNet classes; more than 1,000, as that graph has)
# The two files users have; both hold the same numbers under torchvision's parameter names.
TORCH_FIDELITY_FILE = "weights-inception-2015-12-05-6726825d.pth"
PYTORCH_FID_FILE = "pt_inception-2015-12-05-6726825d.pth"
RESIZE = "bilinear as TF 1.x resize_bilinear (align_corners=False, no antialias) to 299x299, as torch-fidelity"


class ConvBN(nn.Module):
    """Conv (no bias) -> BatchNorm (eps 0.001) -> ReLU: the graph's unit, named `conv` and `bn` as in torchvision."""

    def __init__(
        self, c_in: int, c_out: int, kernel: int | tuple[int, int], stride: int = 1, padding: int | tuple[int, int] = 0
    ) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=padding, bias=False)
        self.bn = nn.BatchNorm2d(c_out, eps=0.001)

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(self.bn(self.conv(x)))


def _avg_pool_without_padding(x: Tensor) -> Tensor:
    # TensorFlow's 3x3 average pool divides by the pixels inside the image, not by 9, at the border.
    return F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False)


class BlockA(nn.Module):
    """Mixed_5b/5c/5d (35x35): 1x1, 5x5 and double-3x3 branches and a pooled 1x1 branch."""

    def __init__(self, c_in: int, pool_features: int) -> None:
        super().__init__()
        self.branch1x1 = ConvBN(c_in, 64, 1)
        self.branch5x5_1 = ConvBN(c_in, 48, 1)
        self.branch5x5_2 = ConvBN(48, 64, 5, padding=2)
        self.branch3x3dbl_1 = ConvBN(c_in, 64, 1)
        self.branch3x3dbl_2 = ConvBN(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = ConvBN(96, 96, 3, padding=1)
        self.branch_pool = ConvBN(c_in, pool_features, 1)

    def forward(self, x: Tensor) -> Tensor:
        b5 = self.branch5x5_2(self.branch5x5_1(x))
        b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        pool = self.branch_pool(_avg_pool_without_padding(x))
        return torch.cat([self.branch1x1(x), b5, b3, pool], 1)


class BlockB(nn.Module):
    """Mixed_6a: 35x35 -> 17x17 by strided 3x3 convs and a max pool."""

    def __init__(self, c_in: int) -> None:
        super().__init__()
        self.branch3x3 = ConvBN(c_in, 384, 3, stride=2)
        self.branch3x3dbl_1 = ConvBN(c_in, 64, 1)
        self.branch3x3dbl_2 = ConvBN(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = ConvBN(96, 96, 3, stride=2)

    def forward(self, x: Tensor) -> Tensor:
        b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        return torch.cat([self.branch3x3(x), b3, F.max_pool2d(x, kernel_size=3, stride=2)], 1)


class BlockC(nn.Module):
    """Mixed_6b..6e (17x17): factorised 7x7 branches of c7 channels."""

    def __init__(self, c_in: int, c7: int) -> None:
        super().__init__()
        self.branch1x1 = ConvBN(c_in, 192, 1)
        self.branch7x7_1 = ConvBN(c_in, c7, 1)
        self.branch7x7_2 = ConvBN(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7_3 = ConvBN(c7, 192, (7, 1), padding=(3, 0))
        self.branch7x7dbl_1 = ConvBN(c_in, c7, 1)
        self.branch7x7dbl_2 = ConvBN(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_3 = ConvBN(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7dbl_4 = ConvBN(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_5 = ConvBN(c7, 192, (1, 7), padding=(0, 3))
        self.branch_pool = ConvBN(c_in, 192, 1)

    def forward(self, x: Tensor) -> Tensor:
        b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        d = x
        for conv in (self.branch7x7dbl_1, self.branch7x7dbl_2, self.branch7x7dbl_3, self.branch7x7dbl_4):
            d = conv(d)
        pool = self.branch_pool(_avg_pool_without_padding(x))
        return torch.cat([self.branch1x1(x), b7, self.branch7x7dbl_5(d), pool], 1)


class BlockD(nn.Module):
    """Mixed_7a: 17x17 -> 8x8."""

    def __init__(self, c_in: int) -> None:
        super().__init__()
        self.branch3x3_1 = ConvBN(c_in, 192, 1)
        self.branch3x3_2 = ConvBN(192, 320, 3, stride=2)
        self.branch7x7x3_1 = ConvBN(c_in, 192, 1)
        self.branch7x7x3_2 = ConvBN(192, 192, (1, 7), padding=(0, 3))
        self.branch7x7x3_3 = ConvBN(192, 192, (7, 1), padding=(3, 0))
        self.branch7x7x3_4 = ConvBN(192, 192, 3, stride=2)

    def forward(self, x: Tensor) -> Tensor:
        b3 = self.branch3x3_2(self.branch3x3_1(x))
        b7 = self.branch7x7x3_4(self.branch7x7x3_3(self.branch7x7x3_2(self.branch7x7x3_1(x))))
        return torch.cat([b3, b7, F.max_pool2d(x, kernel_size=3, stride=2)], 1)


class BlockE(nn.Module):
    """Mixed_7b/7c (8x8): split 3x3 branches. The graph's Mixed_7c pools with a max (`max_pool`), Mixed_7b averages."""

    def __init__(self, c_in: int, *, max_pool: bool) -> None:
        super().__init__()
        self.max_pool = max_pool
        self.branch1x1 = ConvBN(c_in, 320, 1)
        self.branch3x3_1 = ConvBN(c_in, 384, 1)
        self.branch3x3_2a = ConvBN(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3_2b = ConvBN(384, 384, (3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = ConvBN(c_in, 448, 1)
        self.branch3x3dbl_2 = ConvBN(448, 384, 3, padding=1)
        self.branch3x3dbl_3a = ConvBN(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = ConvBN(384, 384, (3, 1), padding=(1, 0))
        self.branch_pool = ConvBN(c_in, 192, 1)

    def forward(self, x: Tensor) -> Tensor:
        s = self.branch3x3_1(x)
        b3 = torch.cat([self.branch3x3_2a(s), self.branch3x3_2b(s)], 1)
        d = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        b3dbl = torch.cat([self.branch3x3dbl_3a(d), self.branch3x3dbl_3b(d)], 1)
        pooled = F.max_pool2d(x, 3, stride=1, padding=1) if self.max_pool else _avg_pool_without_padding(x)
        return torch.cat([self.branch1x1(x), b3, b3dbl, self.branch_pool(pooled)], 1)


def resize_like_tf1(x: Tensor, size: int) -> Tensor:
    """(B, C, H, W) float32 -> (B, C, size, size): TF 1.x bilinear, align_corners=False.

    Output pixel i reads the input at i * (in / out) (no half-pixel centre shift), between its floor and
    the next pixel (clamped at the edge), weighted by the fraction; columns first, then rows. No
    antialiasing, so a downscale skips pixels. The positions are float32, as in TF and torch-fidelity.
    """

    def positions(n_in: int) -> tuple[Tensor, Tensor, Tensor]:
        pos = torch.arange(size, dtype=torch.float32, device=x.device) * torch.tensor(n_in / size, dtype=torch.float32)
        lo = pos.long()
        return lo, (lo + 1).clamp_max(n_in - 1), pos - lo.float()

    y_lo, y_hi, dy = positions(x.size(2))
    x_lo, x_hi, dx = positions(x.size(3))
    dx = dx.view(1, 1, 1, size)

    def along_x(rows: Tensor) -> Tensor:
        left, right = rows.index_select(3, x_lo), rows.index_select(3, x_hi)
        return left + (right - left) * dx

    top, bottom = along_x(x.index_select(2, y_lo)), along_x(x.index_select(2, y_hi))
    return top + (bottom - top) * dy.view(1, 1, size, 1)


class InceptionV3(nn.Module):
    """uint8 (B, 3, H, W) of any size -> (pool3 features (B, 2048), logits without the fc bias (B, 1008)).

    The logits leave out the classifier's bias, as the Inception Score's original code and torch-fidelity
    do (`logits_unbiased`); a constant bias per class would change the softmax, so IS depends on it.
    """

    def __init__(self) -> None:
        super().__init__()
        self.Conv2d_1a_3x3 = ConvBN(3, 32, 3, stride=2)
        self.Conv2d_2a_3x3 = ConvBN(32, 32, 3)
        self.Conv2d_2b_3x3 = ConvBN(32, 64, 3, padding=1)
        self.Conv2d_3b_1x1 = ConvBN(64, 80, 1)
        self.Conv2d_4a_3x3 = ConvBN(80, 192, 3)
        self.Mixed_5b = BlockA(192, 32)
        self.Mixed_5c = BlockA(256, 64)
        self.Mixed_5d = BlockA(288, 64)
        self.Mixed_6a = BlockB(288)
        self.Mixed_6b = BlockC(768, 128)
        self.Mixed_6c = BlockC(768, 160)
        self.Mixed_6d = BlockC(768, 160)
        self.Mixed_6e = BlockC(768, 192)
        self.Mixed_7a = BlockD(768)
        self.Mixed_7b = BlockE(1280, max_pool=False)
        self.Mixed_7c = BlockE(2048, max_pool=True)
        self.fc = nn.Linear(FEATURE_DIM, NUM_CLASSES)

    def forward(self, pixels: Tensor) -> tuple[Tensor, Tensor]:
        if pixels.dtype != torch.uint8 or pixels.ndim != 4 or pixels.size(1) != 3:
            raise ValueError(f"expected uint8 (B, 3, H, W) images; got {pixels.dtype} {tuple(pixels.shape)}")
        # Preprocessing, as the graph (and torch-fidelity): 299x299, then [0, 255] -> [-1, 1).
        x = resize_like_tf1(pixels.float(), SIZE)
        return self.run((x - 128) / 128)

    def run(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """The network alone, on (B, 3, 299, 299) floats in [-1, 1]: (pool3, logits without bias)."""
        # 1. The stem: 299 -> 149 -> 147 -> 73 -> 71 -> 35.
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
        x = F.max_pool2d(x, kernel_size=3, stride=2)
        x = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x))
        x = F.max_pool2d(x, kernel_size=3, stride=2)
        # 2. The mixed blocks: 35x35x288 -> 17x17x768 -> 8x8x2048, then the global average (pool3).
        blocks: tuple[nn.Module, ...] = (self.Mixed_5b, self.Mixed_5c, self.Mixed_5d, self.Mixed_6a, self.Mixed_6b)
        blocks += (self.Mixed_6c, self.Mixed_6d, self.Mixed_6e, self.Mixed_7a, self.Mixed_7b, self.Mixed_7c)
        for block in blocks:
            x = block(x)
        features = torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)
        return features, features.mm(self.fc.weight.T)


def _without_counters(state: dict[str, Tensor]) -> dict[str, Tensor]:
    # BatchNorm's step counter is unused in eval mode; torch-fidelity's file has it, an old-format file may not.
    return {k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}


def load_inception(path: str | Path) -> InceptionV3:
    """The FID Inception network with the weights of torch-fidelity's or pytorch-fid's file, in eval mode.

    The file is read with `torch.load(weights_only=True)`: tensors only, never code. Both projects' files
    name their tensors as torchvision does (`Mixed_6b.branch7x7_2.conv.weight`, `fc.bias`, ...), which
    are this module's names; BatchNorm step counters may be present or not. Any other key, a missing one
    or a wrong shape raises CheckpointError naming the file.
    """
    path = Path(path)
    hint = f"pass torch-fidelity's {TORCH_FIDELITY_FILE} or pytorch-fid's {PYTORCH_FID_FILE}"
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError as e:
        raise CheckpointError(f"Inception weights {path} do not exist; {hint}") from e
    except Exception as e:  # torch raises RuntimeError, UnpicklingError, EOFError, ... for other files
        raise CheckpointError(
            f"Inception weights {path} are not a tensors-only state dict ({type(e).__name__}); {hint}"
        ) from e
    if not isinstance(state, dict) or not all(isinstance(v, Tensor) for v in state.values()):
        raise CheckpointError(f"Inception weights {path} are not a state dict of tensors; {hint}")
    net = InceptionV3()
    own = net.state_dict()
    state = _without_counters(state)
    missing = sorted(set(_without_counters(own)) - set(state))
    unexpected = sorted(set(state) - set(own))
    if missing or unexpected:
        raise CheckpointError(
            f"Inception weights {path} do not have the FID Inception layout "
            f"({len(missing)} tensors missing, e.g. {missing[:2]}; {len(unexpected)} unknown, e.g. {unexpected[:2]}); "
            f"{hint}"
        )
    wrong = [k for k, v in state.items() if v.shape != own[k].shape]
    if wrong:
        raise CheckpointError(
            f"Inception weights {path}: {wrong[0]} has shape {tuple(state[wrong[0]].shape)}, the network "
            f"{tuple(own[wrong[0]].shape)}; {hint}"
        )
    net.load_state_dict({**own, **{k: v.float() for k, v in state.items()}}, strict=True)
    return net.eval().requires_grad_(False)
