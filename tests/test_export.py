"""`ganforge export`: ONNX (run by onnxruntime) and TorchScript equal torch's generator; provenance; bad input."""

import json
import warnings

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from ganforge.checkpoint import file_sha256, load_generator, save_generator
from ganforge.cli import main
from ganforge.config import ModelConfig
from ganforge.export import TORCHSCRIPT_METADATA, export_generator
from ganforge.models import build_generator

# Default run: every arch, every size and both kinds (with and without classes) at least once; all 18 are slow.
FAST = [("mlp", 28, 10), ("dcgan", 32, 0), ("resnet", 64, 10), ("resnet", 28, 0)]
ALL = [(arch, size, k) for arch in ("mlp", "dcgan", "resnet") for size in (28, 32, 64) for k in (0, 10)]
SLOW = [pytest.param(*case, marks=pytest.mark.slow) for case in ALL if case not in FAST]


def _generator_file(tmp_path, arch, size, classes):
    """A generator file with seeded random weights whose images look like a trained G's in scale (std 0.2-0.5).

    The weights are spread by N(0, 0.1) noise (DCGAN's N(0, 0.02) init draws near-flat images), and the
    BatchNorm statistics are those of a few batches, as after training, so eval-mode activations stay O(1).
    """
    channels = 1 if size == 28 else 3
    cfg = ModelConfig(arch=arch, image_size=size, channels=channels, z_dim=8, width=8, num_classes=classes)
    torch.manual_seed(0)
    G = build_generator(cfg)
    with torch.no_grad():
        for p in G.parameters():
            p.add_(torch.randn_like(p) * 0.1)
        for m in G.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                m.momentum = None  # running statistics = the mean over the batches below
                m.reset_running_stats()
        G.train()
        for _ in range(4):
            G(torch.randn(64, cfg.z_dim), torch.arange(64) % classes if classes else None)
    path = tmp_path / "generator.safetensors"
    save_generator(path, G, cfg, {"data": "test", "step": 7})
    return path


def _inputs(G, batch):
    z = torch.randn(batch, G.cfg.z_dim, generator=torch.Generator().manual_seed(batch))
    labels = torch.arange(batch) % G.cfg.num_classes if G.cfg.is_conditional else None
    return z, labels


def _torchscript_load(path, extra=None):
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*torch\.jit\.load` is deprecated", category=DeprecationWarning)
        return torch.jit.load(str(path), _extra_files=extra if extra is not None else {})


@pytest.mark.parametrize(("arch", "size", "classes"), FAST + SLOW)
def test_onnx_and_torchscript_equal_torch(tmp_path, arch, size, classes):
    path = _generator_file(tmp_path, arch, size, classes)
    G = load_generator(path)
    export_generator(path, tmp_path / "g.onnx", fmt="onnx")
    export_generator(path, tmp_path / "g.pt", fmt="torchscript")
    session = ort.InferenceSession(str(tmp_path / "g.onnx"), providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]
    assert names == (["z", "class"] if classes else ["z"])
    scripted = _torchscript_load(tmp_path / "g.pt")
    for batch in (1, 64):
        z, labels = _inputs(G, batch)
        with torch.no_grad():
            expected = G(z, labels).numpy()
            feeds = {"z": z.numpy()} | ({"class": labels.numpy()} if classes else {})
            got_onnx = session.run(["images"], feeds)[0]
            got_ts = (scripted(z, labels) if classes else scripted(z)).numpy()
        assert expected.shape == (batch, G.cfg.channels, size, size) and expected.std() > 0.05  # not a flat image
        assert np.abs(got_onnx - expected).max() <= 1e-4
        assert np.abs(got_ts - expected).max() <= 1e-4
        assert got_onnx.min() >= -1 and got_onnx.max() <= 1


def test_the_files_carry_the_generator_provenance(tmp_path):
    path = _generator_file(tmp_path, "dcgan", 32, 10)
    export_generator(path, tmp_path / "g.onnx", fmt="onnx")
    model = onnx.load(str(tmp_path / "g.onnx"))
    props = {p.key: p.value for p in model.metadata_props}
    assert props["generator_sha256"] == file_sha256(path)
    assert json.loads(props["provenance"]) == {"data": "test", "step": 7}
    assert json.loads(props["model_config"])["num_classes"] == 10 and props["batch"] == "dynamic"
    assert min(op.version for op in model.opset_import if op.domain in ("", "ai.onnx")) >= 17
    assert model.graph.input[1].type.tensor_type.elem_type == onnx.TensorProto.INT64
    export_generator(path, tmp_path / "g.pt", fmt="torchscript")
    extra = {TORCHSCRIPT_METADATA: ""}
    _torchscript_load(tmp_path / "g.pt", extra)
    assert json.loads(extra[TORCHSCRIPT_METADATA])["generator_sha256"] == file_sha256(path)


def test_a_fixed_batch_is_in_the_onnx_inputs(tmp_path, capsys):
    path = _generator_file(tmp_path, "mlp", 28, 0)
    assert main(["export", str(tmp_path), "--format", "onnx", "--out", str(tmp_path / "b4.onnx"), "--batch", "4"]) == 0
    assert "wrote" in capsys.readouterr().out
    session = ort.InferenceSession(str(tmp_path / "b4.onnx"), providers=["CPUExecutionProvider"])
    assert session.get_inputs()[0].shape == [4, 8] and session.get_outputs()[0].shape == [4, 1, 28, 28]
    z = np.random.default_rng(0).standard_normal((4, 8)).astype(np.float32)
    with torch.no_grad():
        expected = load_generator(path)(torch.from_numpy(z)).numpy()
    assert np.abs(session.run(None, {"z": z})[0] - expected).max() <= 1e-4


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--format", "tflite"], "invalid choice: 'tflite'"),
        (["--format", "onnx", "--batch", "0"], "--batch must be a positive number or 'dynamic'; got 0"),
        (["--format", "onnx", "--batch", "many"], "--batch must be a positive number or 'dynamic'; got 'many'"),
    ],
)
def test_bad_arguments_exit_2_and_write_nothing(tmp_path, capsys, extra, message):
    _generator_file(tmp_path, "mlp", 28, 0)
    with pytest.raises(SystemExit) as exit_info:
        main(["export", str(tmp_path), "--out", str(tmp_path / "out.onnx"), *extra])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert message in err and err.strip().splitlines()[-1].startswith("ganforge: error:")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["generator.safetensors"]


def test_a_file_that_is_not_a_generator_is_refused_without_output(tmp_path, capsys):
    bogus = tmp_path / "weights.safetensors"
    bogus.write_bytes(b"not a safetensors file")
    assert main(["export", str(bogus), "--format", "onnx", "--out", str(tmp_path / "g.onnx")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("ganforge: error:") and len(err.splitlines()) == 1 and "weights.safetensors" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["weights.safetensors"]


def test_a_failed_export_leaves_no_file(tmp_path, monkeypatch):
    path = _generator_file(tmp_path, "mlp", 28, 0)
    (tmp_path / "old.pt").write_bytes(b"previous")

    def broken_save(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(torch.jit, "save", broken_save)
    with pytest.raises(RuntimeError, match="disk full"):
        export_generator(path, tmp_path / "old.pt", fmt="torchscript")
    assert (tmp_path / "old.pt").read_bytes() == b"previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["generator.safetensors", "old.pt"]


def test_spectral_norm_is_baked_in_and_the_original_generator_is_untouched(tmp_path):
    cfg = ModelConfig(arch="resnet", image_size=32, channels=3, z_dim=8, width=8, num_classes=3, spectral_norm_g=True)
    torch.manual_seed(0)
    G = build_generator(cfg)
    G.train()
    with torch.no_grad():
        G(torch.randn(16, 8), torch.arange(16) % 3)  # one power iteration: u and v away from their init
    G.eval()
    keys = sorted(G.state_dict())
    z, labels = torch.randn(64, 8), torch.arange(64) % 3
    with torch.no_grad():
        before = G(z, labels)
    export_generator(G, tmp_path / "sn.onnx", fmt="onnx")
    session = ort.InferenceSession(str(tmp_path / "sn.onnx"), providers=["CPUExecutionProvider"])
    got = session.run(None, {"z": z.numpy(), "class": labels.numpy()})[0]
    assert np.abs(got - before.numpy()).max() <= 1e-4
    with torch.no_grad():
        assert torch.equal(G(z, labels), before)  # still parametrized, same weights, same u
    assert sorted(G.state_dict()) == keys and any("parametrizations" in k for k in keys)
