"""Micro-batching for the server: concurrent requests share one G forward, with identical results.

CPU matmul kernels (MKL, oneDNN) pick their blocking from the batch size, so a row's output can
change in its last bits when the batch around it grows (measured here: a 3-row batch differs from
the same rows inside a 600-row batch). Batching naively would break "same seed, same images".
So G only ever sees chunks of exactly `chunk` rows (padded with zeros): one shape, one kernel
path. A row's result then depends only on its latent, if it does not depend on its position in
the chunk; `is_row_invariant` checks that on the real model at startup, and where it does not
hold each request runs alone (still in fixed chunks, so still deterministic).
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from ganforge.models import Generator
from ganforge.sample import GENERATE_CHUNK, generate

log = logging.getLogger(__name__)


@torch.no_grad()
def is_row_invariant(G: Generator, *, chunk: int, seed: int = 0) -> bool:
    """Whether G's output for a row is bit-identical at every position inside a chunk."""
    cfg = G.cfg
    rng = torch.Generator().manual_seed(seed)
    z = torch.randn(chunk, cfg.z_dim, generator=rng)
    labels = torch.randint(0, cfg.num_classes, (chunk,), generator=rng) if cfg.is_conditional else None
    ref = generate(G, z, labels, chunk=chunk)
    for shift in range(1, chunk):
        y = None if labels is None else labels.roll(shift, 0)
        if not torch.equal(generate(G, z.roll(shift, 0), y, chunk=chunk), ref.roll(shift, 0)):
            return False
    return True


def _identity(images: Tensor) -> Tensor:
    return images


@dataclass
class _Job:
    z: Tensor
    labels: Tensor | None
    post: Callable[[Tensor], Any]
    future: asyncio.Future[Any]
    rows: int = field(init=False)

    def __post_init__(self) -> None:
        self.rows = self.z.size(0)


class MicroBatcher:
    """Queue requests for `wait_s`, run one chunked forward for all of them, hand each its rows.

    All state is touched on the event loop only; G runs on one worker thread, one forward at a
    time, and each request's `post` (PNG encoding, say) runs there too, right after: one thread
    hop a request. Requests that arrive while G is busy go into the next forward without waiting.
    """

    def __init__(
        self,
        G: Generator,
        *,
        chunk: int = GENERATE_CHUNK,
        max_rows: int = 1024,
        wait_s: float = 0.002,
        batching: bool | None = None,
    ) -> None:
        self.G = G
        self.chunk = chunk
        self.max_rows = max_rows
        self.wait_s = wait_s
        self.batching = is_row_invariant(G, chunk=chunk) if batching is None else batching
        if not self.batching:
            log.warning("G's output depends on a row's place in a batch here; running each request alone")
        self._executor: ThreadPoolExecutor | None = None  # made on first use, so close() can be followed by reuse
        self._encoders: ThreadPoolExecutor | None = None
        self._pending: list[_Job] = []
        self._timer: asyncio.TimerHandle | None = None
        self._busy = False

    def forward(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        """The unbatched result for these latents; what `generate` returns, bit for bit."""
        return generate(self.G, z, labels, chunk=self.chunk)

    async def generate(
        self, z: Tensor, labels: Tensor | None = None, *, post: Callable[[Tensor], Any] = _identity
    ) -> Any:
        """post(images): images (n, C, H, W) for latents z (n, z_dim), all computed off the event loop."""
        loop = asyncio.get_running_loop()
        job = _Job(z, labels, post, loop.create_future())
        self._pending.append(job)
        if not self._busy:
            if sum(j.rows for j in self._pending) >= self.max_rows or not self.batching:
                self._flush(loop)
            elif self._timer is None:
                self._timer = loop.call_later(self.wait_s, self._flush, loop)
        return await job.future

    def close(self) -> None:
        """Stop the G and encoder threads once the work in flight (if any) is done."""
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None
        if self._encoders is not None:
            self._encoders.shutdown(wait=True)
            self._encoders = None

    def _flush(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._pending = [j for j in self._pending if not j.future.done()]  # drop cancelled requests
        if self._busy or not self._pending:
            return
        jobs: list[_Job] = []
        rows = 0
        while self._pending and (not jobs or (self.batching and rows + self._pending[0].rows <= self.max_rows)):
            jobs.append(self._pending.pop(0))
            rows += jobs[-1].rows
        self._busy = True
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ganforge-G")
        done = loop.run_in_executor(self._executor, self._run, jobs)
        done.add_done_callback(lambda f: self._finish(loop, jobs, f))

    def _run(self, jobs: list[_Job]) -> list[Tensor]:
        """On the G thread: one forward for all jobs; each job's rows."""
        z = torch.cat([j.z for j in jobs])
        labels = None if jobs[0].labels is None else torch.cat([j.labels for j in jobs if j.labels is not None])
        return list(self.forward(z, labels).split([j.rows for j in jobs]))

    def _finish(self, loop: asyncio.AbstractEventLoop, jobs: list[_Job], done: asyncio.Future[Any]) -> None:
        """G is free again: start the next batch, and encode this one's replies on the encoder threads."""
        self._busy = False
        error = asyncio.CancelledError() if done.cancelled() else done.exception()
        for i, job in enumerate(jobs):
            if job.future.done():
                continue
            if error is not None:
                job.future.set_exception(error)
                continue
            encoded = loop.run_in_executor(self._encoder(), job.post, done.result()[i])
            encoded.add_done_callback(functools.partial(_settle, job.future))
        if self._pending:  # they queued while G was busy: they have waited long enough
            self._flush(loop)

    def _encoder(self) -> ThreadPoolExecutor:
        # PNG and zip encoding (zlib releases the GIL) overlaps the next forward, one reply at a time.
        if self._encoders is None:
            self._encoders = ThreadPoolExecutor(max_workers=2, thread_name_prefix="ganforge-encode")
        return self._encoders


def _settle(future: asyncio.Future[Any], encoded: asyncio.Future[Any]) -> None:
    """Hand one request its encoded reply, or its own error."""
    if future.done():
        return
    if encoded.cancelled():
        future.cancel()
    elif encoded.exception() is not None:
        future.set_exception(encoded.exception())  # type: ignore[arg-type]
    else:
        future.set_result(encoded.result())
