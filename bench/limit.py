#!/usr/bin/env python3
"""How close one training step runs to this machine's compute-bound limit.

Records every matmul and convolution of one real step of a preset (forward and backward, at the
step's own shapes and strides, caught by a TorchDispatchMode), times each alone in float32 and in
bfloat16, and sums them into the step's limit: the steps/s it would reach if it did nothing but
those kernels at their standalone speed. Then it times the real step (ganforge.train.build_state
and train_step on random data of the preset's shape) and prints the share of the limit it reaches.

    python bench/limit.py --preset seed
    python bench/limit.py --preset dcgan --precision bf16    # the step under bf16 autocast

The last line is `share_of_limit=0.NN` (against the float32 limit, or the bfloat16 one with
--precision bf16). Run it on a quiet machine: other processes on the cores change everything.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import platform
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_map
from torch.utils.flop_counter import FlopCounterMode

from ganforge.precision import MixedPrecision, cpu_flags, cpu_model
from ganforge.presets import PRESETS
from ganforge.train import build_state, train_step

aten = torch.ops.aten
# The compute kernels: linear layers land in mm/addmm, convolutions (and their transposes) in these two.
COMPUTE_OPS = {aten.mm, aten.addmm, aten.bmm, aten.baddbmm, aten.convolution, aten.convolution_backward}
FLAGS_THAT_MATTER = ("avx2", "fma", "avx512f", "avx512_bf16", "avx512_vnni", "amx_tile", "amx_bf16", "amx_int8")


@dataclass(frozen=True)
class TensorSpec:
    """Shape, strides and dtype of one tensor argument: enough to rebuild an equivalent input."""

    shape: tuple[int, ...]
    stride: tuple[int, ...]
    dtype: torch.dtype

    def describe(self) -> str:
        """`128x256`, with a trailing T for a transposed (column-major) matrix."""
        transposed = len(self.shape) == 2 and self.stride[0] == 1 and self.shape[1] > 1
        return "x".join(map(str, self.shape)) + ("T" if transposed else "")

    def make(self, dtype: torch.dtype) -> torch.Tensor:
        out = torch.empty_strided(self.shape, self.stride, dtype=dtype if self.dtype.is_floating_point else self.dtype)
        return out.normal_() if out.is_floating_point() else out.zero_()


@dataclass(frozen=True)
class Call:
    """One compute op with its arguments (tensors as TensorSpec, the rest as given)."""

    op: Any
    args: tuple[Any, ...]

    def label(self) -> str:
        shapes = [a.describe() for a in self.args if isinstance(a, TensorSpec)]
        name = self.op.__name__.split(".")[0]
        # aten.convolution's 7th argument and convolution_backward's 8th say "transposed"
        transposed = {"convolution": 6, "convolution_backward": 7}.get(name)
        if transposed is not None and self.args[transposed]:
            name += "_transposed"
        return f"{name}({', '.join(shapes)})"

    def inputs(self, dtype: torch.dtype) -> tuple[Any, ...]:
        return tree_map(lambda a: a.make(dtype) if isinstance(a, TensorSpec) else a, self.args)


def _frozen(value: Any) -> Any:
    """Lists as tuples, so that a Call can be counted (aten takes tuples for its int[] and bool[] arguments)."""
    if isinstance(value, (list, tuple)):
        return tuple(_frozen(v) for v in value)
    return value


class _Recorder(TorchDispatchMode):
    """Notes each compute op that runs (forward and backward) as a Call."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[Call] = []

    def __torch_dispatch__(self, func: Any, types: Any, args: tuple[Any, ...] = (), kwargs: Any = None) -> Any:
        kwargs = kwargs or {}
        if func.overloadpacket in COMPUTE_OPS:
            spec = tree_map(
                lambda a: TensorSpec(tuple(a.shape), tuple(a.stride()), a.dtype) if isinstance(a, torch.Tensor) else a,
                tuple(args),
            )
            self.calls.append(Call(func, _frozen(spec)))
        return func(*args, **kwargs)


def hardware() -> str:
    flags = cpu_flags()
    present = [f for f in FLAGS_THAT_MATTER if f in flags]
    missing = [f for f in ("avx2", "avx512f", "avx512_bf16", "amx_bf16") if f not in flags]
    return (
        f"cpu: {cpu_model()} ({platform.machine()}); flags: {' '.join(present) or 'none found'}"
        f"{'; no ' + ' '.join(missing) if missing else ''}; torch {torch.__version__} "
        f"(kernels {torch.backends.cpu.get_cpu_capability()}), {torch.get_num_threads()} threads"
    )


def make_step(preset: str, precision: str) -> tuple[Callable[[], None], int]:
    """The preset's real training step on random data of its shape, and its batch size."""
    cfg = dataclasses.replace(PRESETS[preset], precision=precision)
    device = torch.device("cpu")
    state = build_state(cfg, device)
    state.autocast = MixedPrecision(precision, device).autocast  # forwards in bf16, losses and updates in fp32
    rng = torch.Generator().manual_seed(0)
    real = torch.rand(cfg.batch_size, *cfg.model.shape, generator=rng) * 2 - 1
    labels = torch.randint(0, cfg.model.num_classes, (cfg.batch_size,)) if cfg.model.is_conditional else None

    def step() -> None:
        train_step(state, lambda: (real, labels), cfg)

    return step, cfg.batch_size


def record(step: Callable[[], None]) -> list[Call]:
    recorder = _Recorder()
    with recorder:
        step()
    return recorder.calls


def seconds_per_call(fn: Callable[[], Any], iters: int, rounds: int) -> float:
    """Best of `rounds` averages over `iters` calls, after a warmup."""
    for _ in range(max(2, iters // 10)):
        fn()
    best = float("inf")
    for _ in range(rounds):
        t0 = time.perf_counter()
        for _ in range(iters):
            fn()
        best = min(best, (time.perf_counter() - t0) / iters)
    return best


def flops_of(call: Call) -> int:
    counter = FlopCounterMode(display=False)
    with counter:
        call.op(*call.inputs(torch.float32))
    return counter.get_total_flops()


@contextlib.contextmanager
def no_grad() -> Iterator[None]:
    with torch.no_grad():
        yield


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", default="seed", choices=sorted(PRESETS))
    p.add_argument("--precision", default="fp32", choices=("fp32", "bf16"), help="the real step's precision")
    p.add_argument("--iters", type=int, default=50, help="calls a timing round, for each op and for the step")
    p.add_argument("--rounds", type=int, default=5, help="timing rounds (the best counts)")
    args = p.parse_args()

    print(hardware())
    step, batch = make_step(args.preset, args.precision)
    step()  # the first step allocates optimizer state; record a steady one
    calls = record(step)
    counts = Counter(calls)
    print(f"preset {args.preset}: batch {batch}; {len(calls)} matmul/convolution calls a step, {len(counts)} distinct")

    total = {"fp32": 0.0, "bf16": 0.0}
    flops_total = 0
    print(f"{'op (shapes)':58} {'n':>3} {'MFLOP':>8} {'fp32 us':>9} {'GFLOP/s':>8} {'bf16 us':>9} {'GFLOP/s':>8}")
    with no_grad():
        for call, n in counts.items():
            flops = flops_of(call)
            times = {}
            for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
                inputs = call.inputs(dtype)
                times[name] = seconds_per_call(lambda inputs=inputs, op=call.op: op(*inputs), args.iters, args.rounds)
                total[name] += n * times[name]
            flops_total += n * flops
            print(
                f"{call.label()[:58]:58} {n:3d} {flops / 1e6:8.1f} {times['fp32'] * 1e6:9.1f} "
                f"{flops / times['fp32'] / 1e9:8.1f} {times['bf16'] * 1e6:9.1f} {flops / times['bf16'] / 1e9:8.1f}"
            )
    limit = {name: 1 / seconds for name, seconds in total.items()}
    print(
        f"one step: {flops_total / 1e9:.3f} GFLOP in matmuls and convolutions; "
        f"limit fp32 {limit['fp32']:.1f} steps/s ({flops_total * limit['fp32'] / 1e9:.0f} GFLOP/s), "
        f"bf16 {limit['bf16']:.1f} steps/s ({flops_total * limit['bf16'] / 1e9:.0f} GFLOP/s)"
    )

    steps_per_s = 1 / seconds_per_call(step, args.iters, args.rounds)
    share = steps_per_s / limit[args.precision]
    print(
        f"real step ({args.precision}): {steps_per_s:.1f} steps/s, {steps_per_s * batch:.0f} img/s, "
        f"{flops_total * steps_per_s / 1e9:.0f} GFLOP/s; limit {limit[args.precision]:.1f} steps/s"
    )
    print(f"share_of_limit={share:.2f}")


if __name__ == "__main__":
    main()
