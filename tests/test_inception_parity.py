"""Inception FID, KID and IS equal torch-fidelity's for the same weights file and images; pytorch-fid's file loads too.

The real weights cannot be downloaded here, so the network gets seeded random weights, saved as
torch-fidelity's file (a torch.save'd state dict) and as pytorch-fid's (torchvision's key names, the
legacy serialisation, no BatchNorm step counters). torch-fidelity imports torchvision, whose wheels here
are CUDA builds that do not import beside the CPU torch: tests/inception_helpers.py stands a stub module
in for `torchvision` (torch-fidelity's Inception extractor and metric code never touch it).
Each image set is a few images: every one costs a 299x299 Inception pass on the CPU on each side.
"""

from collections import OrderedDict

import numpy as np
import pytest
import torch
from inception_helpers import import_torch_fidelity, random_inception_state, synthetic_images
from PIL import Image

from ganforge.errors import CheckpointError
from ganforge.metrics import evaluate
from ganforge.metrics.extractors import load_extractor
from ganforge.metrics.inception import load_inception, resize_like_tf1
from ganforge.metrics.inception_score import inception_score

N = 10  # images a set
KID_SUBSETS, KID_SUBSET_SIZE, IS_SPLITS = 5, 8, 2  # subsets smaller than N, so the subset sampler is exercised


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    path = tmp_path_factory.mktemp("inception") / "weights-inception-2015-12-05-6726825d.pth"
    torch.save(random_inception_state(0), path)
    return path


def _write_folder(images: torch.Tensor, folder) -> None:
    folder.mkdir()
    for i, pixels in enumerate(images):
        array = pixels.permute(1, 2, 0).numpy()
        Image.fromarray(array[:, :, 0] if array.shape[2] == 1 else array).save(folder / f"{i:03d}.png")


class _UInt8RGB(torch.utils.data.Dataset):
    """torch-fidelity's input: uint8 (3, H, W) images (grey repeated to RGB, as a PNG reader's convert("RGB"))."""

    def __init__(self, images: torch.Tensor) -> None:
        self.images = images.expand(-1, 3, -1, -1) if images.size(1) == 1 else images

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> torch.Tensor:
        return self.images[i]


@pytest.mark.slow  # two full Inception evaluations at 299 px on the CPU (1-4 minutes each); the bit-for-bit
# pool3/logits/resize test below stays in the default run
@pytest.mark.parametrize("kind", ["grey28", "colour64"])
def test_fid_kid_and_is_equal_torch_fidelity(kind, weights, tmp_path, monkeypatch):
    monkeypatch.setenv("GANFORGE_HOME", str(tmp_path / "home"))  # the reference cache
    # Unlike sets (backgrounds differ), so that FID and KID are well above 0.
    fake, real = synthetic_images(kind, N, 1, background=0.3), synthetic_images(kind, N, 2, background=0.0)
    _write_folder(real, tmp_path / "real")

    ours = evaluate(
        images=fake.float() / 127.5 - 1,
        data=f"folder:{tmp_path / 'real'}",
        inception_weights=weights,
        metrics=["fid", "kid", "inception_score"],
        kid_subsets=KID_SUBSETS,
        kid_subset_size=KID_SUBSET_SIZE,
        is_splits=IS_SPLITS,
    )
    theirs = import_torch_fidelity().calculate_metrics(
        input1=_UInt8RGB(fake),
        input2=_UInt8RGB(real),
        cuda=False,
        fid=True,
        kid=True,
        isc=True,
        feature_extractor_weights_path=str(weights),
        kid_subsets=KID_SUBSETS,
        kid_subset_size=KID_SUBSET_SIZE,
        isc_splits=IS_SPLITS,
        cache=False,
        save_cpu_ram=True,
        verbose=False,
    )
    # Far from 0, so a relative tolerance means something.
    assert theirs["frechet_inception_distance"] > 1 and theirs["kernel_inception_distance_mean"] > 1e-3
    assert theirs["inception_score_mean"] > 1.01  # the classes read differ between images (IS 1: all alike)
    assert ours["fid"] == pytest.approx(theirs["frechet_inception_distance"], rel=1e-4)
    assert ours["kid"] == pytest.approx(theirs["kernel_inception_distance_mean"], rel=1e-4)
    assert ours["kid_std"] == pytest.approx(theirs["kernel_inception_distance_std"], rel=1e-3)
    assert ours["inception_score"] == pytest.approx(theirs["inception_score_mean"], rel=1e-3)
    assert ours["inception_score_std"] == pytest.approx(theirs["inception_score_std"], rel=1e-3, abs=1e-6)
    assert ours["labels"]["fid"] == "FID (Inception)" and ours["labels"]["inception_score"] == "IS (Inception)"
    assert ours["extractor"]["sha256"] and ours["classifier_score"] is None
    assert ours["protocol"]["resize"].startswith("bilinear as TF 1.x")


def test_resize_and_features_match_torch_fidelity_bit_for_bit(weights):
    import_torch_fidelity()
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3
    from torch_fidelity.interpolate_compat_tensorflow import interpolate_bilinear_2d_like_tensorflow1x

    x = torch.randint(0, 256, (2, 3, 28, 37), generator=torch.Generator().manual_seed(0)).float()
    for size in (299, 17):  # up and down
        theirs = interpolate_bilinear_2d_like_tensorflow1x(x, size=(size, size), align_corners=False)
        assert torch.equal(resize_like_tf1(x, size), theirs)
    theirs_net = FeatureExtractorInceptionV3("inception-v3-compat", ["2048", "logits_unbiased"],
                                             feature_extractor_weights_path=str(weights))  # fmt: skip
    pixels = x.to(torch.uint8)
    with torch.no_grad():
        ours, theirs = load_inception(weights)(pixels), theirs_net(pixels)
    assert torch.equal(ours[0], theirs[0]) and torch.equal(ours[1], theirs[1])


def test_pytorch_fid_file_layout_loads_to_the_same_network(weights, tmp_path):
    """pytorch-fid builds torchvision's Inception3(num_classes=1008, aux_logits=False) and loads its file by those
    names, which torch-fidelity's file and ganforge's network share; its old file has no BatchNorm step counters."""
    state = torch.load(weights, weights_only=True)
    # Spot checks of torchvision's layout (checked once in full against torchvision 0.28's inception.py: 566
    # tensors, names and shapes equal).
    assert state["Conv2d_1a_3x3.conv.weight"].shape == (32, 3, 3, 3)
    assert state["Mixed_6e.branch7x7dbl_5.conv.weight"].shape == (192, 192, 1, 7)
    assert state["Mixed_7c.branch3x3dbl_3b.bn.running_var"].shape == (384,)
    assert state["fc.weight"].shape == (1008, 2048) and state["fc.bias"].shape == (1008,)
    assert sum(1 for k in state if not k.endswith("num_batches_tracked")) == 472 and len(state) == 566
    legacy = OrderedDict((k, v) for k, v in state.items() if not k.endswith("num_batches_tracked"))
    pytorch_fid_file = tmp_path / "pt_inception-2015-12-05-6726825d.pth"
    torch.save(legacy, pytorch_fid_file, _use_new_zipfile_serialization=False)

    x = torch.randint(0, 256, (3, 3, 40, 40), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        a, b = load_inception(weights)(x), load_inception(pytorch_fid_file)(x)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert a[0].shape == (3, 2048) and a[1].shape == (3, 1008) and a[0].std() > 0.01


def test_a_file_of_another_layout_or_with_code_is_refused(weights, tmp_path):
    state = torch.load(weights, weights_only=True)
    renamed = {("module." + k): v for k, v in state.items()}
    torch.save(renamed, tmp_path / "renamed.pth")
    with pytest.raises(CheckpointError, match="do not have the FID Inception layout"):
        load_inception(tmp_path / "renamed.pth")
    torch.save({**state, "fc.weight": torch.zeros(1000, 2048)}, tmp_path / "shape.pth")
    with pytest.raises(CheckpointError, match=r"fc.weight has shape \(1000, 2048\)"):
        load_inception(tmp_path / "shape.pth")
    torch.save(torch.nn.Linear(2, 2), tmp_path / "module.pth")  # a pickled module: code, refused unread
    with pytest.raises(CheckpointError, match="not a tensors-only state dict"):
        load_inception(tmp_path / "module.pth")


def test_inception_weights_come_from_the_argument_or_the_environment(weights, tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))  # never a real cache of this machine
    monkeypatch.setenv("GANFORGE_INCEPTION_WEIGHTS", str(weights))
    ext = load_extractor("inception")
    assert ext.metadata["weights"] == str(weights) and ext.label == "Inception" and ext.feature_dim == 2048
    monkeypatch.delenv("GANFORGE_INCEPTION_WEIGHTS")
    assert load_extractor("inception", inception_weights=weights).sha256 == ext.sha256


def test_inception_score_splits_as_torch_fidelity():
    import_torch_fidelity()
    from torch_fidelity.metric_isc import isc_features_to_metric

    logits = torch.randn(50, 1008, generator=torch.Generator().manual_seed(0)) * 3
    theirs = isc_features_to_metric(logits, splits=10, shuffle=True, rng_seed=2020)
    mean, std = inception_score(logits.double().softmax(1).numpy(), splits=10)
    assert mean == pytest.approx(theirs["inception_score_mean"], rel=1e-9)
    assert std == pytest.approx(theirs["inception_score_std"], rel=1e-9)
    certain = np.eye(10)[np.arange(50) % 10]  # confident and even over 10 classes: IS = 10 in every split of 5
    assert inception_score(certain, splits=5, shuffle_seed=None) == pytest.approx((10.0, 0.0), abs=1e-9)
