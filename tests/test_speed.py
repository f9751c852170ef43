"""Speed options (--compile, --channels-last): they change no result that matters, and resume stays exact."""

import dataclasses
import os
import shutil
import signal

import pytest
import torch
from test_loop import everything_on
from test_train import assert_same_weights, tiny_data, weights

from ganforge.config import TrainConfig
from ganforge.errors import ConfigError
from ganforge.presets import PRESETS
from ganforge.train import build_state, train, train_step


def test_channels_last_is_refused_for_the_mlp_and_unknown_compile_modes_are_named():
    with pytest.raises(ConfigError, match="--channels-last applies to the convolutional archs"):
        dataclasses.replace(PRESETS["seed"], channels_last=True)
    with pytest.raises(ConfigError, match="unknown compile mode 'fast'"):
        TrainConfig(compile="fast")  # type: ignore[arg-type]


def test_channels_last_lays_out_the_conv_weights_and_keeps_the_step_the_same():
    cfg = dataclasses.replace(PRESETS["dcgan"], batch_size=8, device="cpu", precision="fp32")
    real = torch.rand(8, 1, 28, 28) * 2 - 1
    losses = {}
    for channels_last in (False, True):
        run = dataclasses.replace(cfg, channels_last=channels_last)
        state = build_state(run, torch.device("cpu"))
        convs = [m.weight for m in state.D.modules() if isinstance(m, torch.nn.Conv2d)]
        nhwc = [w.is_contiguous(memory_format=torch.channels_last) for w in convs]
        assert all(nhwc) if channels_last else not all(nhwc)  # (a 1-channel weight is both at once)
        x = real.contiguous(memory_format=torch.channels_last) if channels_last else real
        out = [train_step(state, lambda x=x: (x, None), run) for _ in range(3)]
        losses[channels_last] = torch.stack([o["loss_d"] for o in out] + [o["loss_g"] for o in out])
    # The same arithmetic in another memory order: equal up to float32 summation order (measured < 1e-5).
    torch.testing.assert_close(losses[True], losses[False], rtol=1e-4, atol=1e-4)


@pytest.mark.skipif(
    shutil.which("g++") is None and shutil.which("c++") is None,
    reason="torch.compile on the CPU needs a C++ compiler: install g++ (Debian: apt install g++)",
)
# torch.compile's own imports touch torch.jit; dynamo probes the spectral norm's (non-leaf) weight for .grad
# under a filter that hides the warning, except where pytest turns warnings into errors.
@pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore:The .grad attribute of a Tensor that is not a leaf")
def test_resume_is_exact_with_compile_channels_last_and_bf16_on(tmp_path):
    """Issue 13 item 4: every speed option on at once, with every part of the step, stopped and resumed."""
    data = tiny_data(n=64, size=28)
    speed = dict(compile="default", channels_last=True, precision="bf16", steps=8, checkpoint_every=4)
    # Each run compiles its own networks; dynamo's cache of graphs per forward function fills up over several
    # runs in one process and then falls back to eager (other numerics). A CLI run is one process; here each
    # run starts from an empty cache as it would.
    torch.compiler.reset()
    train(everything_on(tmp_path / "straight", **speed), dataset=data)

    def stop_at_5(step, logged):
        if step == 5:
            os.kill(os.getpid(), signal.SIGINT)

    torch.compiler.reset()
    assert train(everything_on(tmp_path / "stopped", **speed), dataset=data, on_step=stop_at_5).interrupted
    torch.compiler.reset()
    train(everything_on(tmp_path / "stopped", **speed), resume=True, dataset=data)
    assert_same_weights(weights(tmp_path / "straight"), weights(tmp_path / "stopped"))
