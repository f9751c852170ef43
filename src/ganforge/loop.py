"""The training loop around train_step: data, logging, checks, warnings, rollback, samples, checkpoints."""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import torch

from ganforge import checkpoint, distributed, model_card, rundir, speed
from ganforge.batches import Batches
from ganforge.config import TrainConfig
from ganforge.data import Dataset, check_classes, load_dataset
from ganforge.diagnostics import Monitor, collapse_advice, summary_line
from ganforge.distributed import DistInfo
from ganforge.errors import CheckpointError, DataError, GanforgeError, TrainingError
from ganforge.logline import Once, log_line, quiet_repeats, scalars
from ganforge.marking import FROM_GENERATOR, FROM_RUN, Marker, WatermarkSetting, make_marker, run_identity
from ganforge.models import Generator
from ganforge.probe import QualityProbe
from ganforge.sample import generate, latents
from ganforge.step import train_step
from ganforge.stopping import stop_requests
from ganforge.tensorboard import TensorBoardLog
from ganforge.train_state import build_state, restore_state, state_payload
from ganforge.version import __version__
from ganforge.watermark_keys import resolve_key

log = logging.getLogger("ganforge.train")  # the CLI quiets this one logger for the whole run

GRID_SIZE = 25  # the 5x5 grid of samples.png
# The automatic check cadence skips a due check that would take the checks past this share of the training time.
# With the end-of-run check and FID on top, the checks add under 5% to a 3,000-step seed run (docs/benchmarks.md),
# whose ~7 ms steps would otherwise pay 0.25 s for a check every 300 steps.
CHECK_SHARE = 0.02


@dataclass
class RunResult:
    """What train() returns: where the outputs are and how the run went."""

    run_dir: Path
    step: int
    steps_trained: int
    seconds: float  # this process's whole loop: steps, checks, samples, checkpoints, the report
    img_per_s: float  # images a second of the steps alone (train_seconds)
    final: dict[str, float]
    generator_path: Path
    samples_path: Path | None
    interrupted: bool = False
    quality: dict[str, float] = field(default_factory=dict)  # the last quick quality check (classes, mode KL, ...)
    warnings: list[str] = field(default_factory=list)  # codes of the warnings raised (mode_collapse, d_wins, ...)
    summary: str = ""  # one line: what the run covered, and what to try when it went wrong
    train_seconds: float = 0.0  # the steps alone


def load_training_data(cfg: TrainConfig) -> Dataset:
    """The run's training data, conformed to the model's image size and channels."""
    return load_dataset(
        cfg.data, split="train", data_dir=cfg.data_dir, image_size=cfg.model.image_size, channels=cfg.model.channels
    )


def check_dataset(cfg: TrainConfig, dataset: Dataset) -> None:
    """The data must fit the model and the batch size."""
    if tuple(dataset.images.shape[1:]) != cfg.model.shape:
        raise DataError(
            f"{cfg.data} holds samples of shape {tuple(dataset.images.shape[1:])}, the model makes {cfg.model.shape}; "
            "pass data that fits the preset (--image-size, --channels)"
        )
    if cfg.batch_size > len(dataset):
        raise DataError(
            f"batch size {cfg.batch_size} is larger than the dataset {cfg.data} ({len(dataset)} images); "
            "pass a smaller --batch-size"
        )
    check_classes(dataset, cfg.model.num_classes)  # returns at once for unconditional models


class TrainingLoop:
    """One run: set up (refusing bad resumes before any write), then step until cfg.steps or a stop."""

    def __init__(
        self,
        cfg: TrainConfig,
        *,
        resume: bool,
        resume_from: str | Path | None,
        dataset: Dataset | None,
        on_step: Callable[[int, dict[str, float] | None], None] | None,
        evaluator: Callable[[Generator], dict[str, Any]] | None,
        dist: DistInfo,
        watch: bool = False,
        watermark: WatermarkSetting = True,
    ) -> None:
        cfg = speed.resolve_auto(cfg, dist.device)  # "auto" precision made concrete, and recorded as such
        self.dist = dist  # one process, or this rank of a torchrun job; rank 0 alone writes the run directory
        self.device = dist.device
        self.run_dir = Path(cfg.out_dir)
        self.on_step = on_step
        self.watermark = watermark  # resolved at the first grid, on rank 0 (the one that writes them)
        # 1. Everything that can refuse the command, before anything is written.
        if self.run_dir.exists() and not self.run_dir.is_dir():
            raise TrainingError(f"output path {self.run_dir} is a file; pass a folder with --out")
        self.created_dir = not self.run_dir.exists()  # a failed fresh run takes back what it wrote
        # One writer a run directory: a second training into it is refused, naming the first one's pid.
        self.lock = rundir.RunLock(self.run_dir) if dist.is_main else None
        try:
            if self.lock is not None and self.run_dir.is_dir():
                self.lock.acquire()
            self._setup(cfg, resume=resume, resume_from=resume_from, dataset=dataset, evaluator=evaluator, watch=watch)
        except BaseException:
            if self.lock is not None:
                self.lock.release()
            raise

    def _setup(
        self,
        cfg: TrainConfig,
        *,
        resume: bool,
        resume_from: str | Path | None,
        dataset: Dataset | None,
        evaluator: Callable[[Generator], dict[str, Any]] | None,
        watch: bool,
    ) -> None:
        dist = self.dist
        payload, ckpt_path = None, None
        history: list[dict[str, Any]] = []
        distributed.local_batch_size(cfg.batch_size, dist, pack=cfg.model.pac)  # each process's share, in whole packs
        if resume:
            ckpt_path, payload = self._resume_checkpoint(resume_from)
            saved_world = int(payload.get("world_size", 1))
            if saved_world != dist.world_size:
                raise CheckpointError(
                    f"checkpoint {ckpt_path} was trained by {saved_world} process(es), this run has {dist.world_size}; "
                    f"resume with {saved_world} in all (torchrun --nproc-per-node x --nnodes) or start a new --out"
                )
            step = int(payload["step"])
            if resume_from is not None and not (self.run_dir / rundir.CONFIG_FILE).is_file():
                # A new run from another run's checkpoint (a branch): its config, continued here, its origin recorded.
                saved = TrainConfig.from_dict(json.loads(payload["config"]))
                changes = rundir.check_resume_changes(saved, cfg, step)
                history = [
                    {"branched_from": str(ckpt_path), "at_step": step, **({"changed": changes} if changes else {})}
                ]
                log.info("starting %s from %s at step %d", self.run_dir, ckpt_path, step)
            else:
                saved, history = rundir.read_config(self.run_dir)
                changes = rundir.check_resume_changes(saved, cfg, step)
                if changes:
                    listed = ", ".join(f"{k} {a} -> {b}" for k, (a, b) in changes.items())
                    log.info("resuming with changed settings: %s", listed)
                    history = [*history, {"resumed_at_step": step, "changed": changes}]
        elif checkpoint.latest_checkpoint(self.run_dir) is not None:
            raise TrainingError(
                f"{self.run_dir} already holds a run; pass --resume to continue it or choose another --out"
            )
        self.cfg = cfg
        self.dataset = dataset if dataset is not None else load_training_data(cfg)
        check_dataset(cfg, self.dataset)
        self.state = build_state(cfg, self.device, dist)
        # Every rank draws the same global batch order (same seed) and reads only its own disjoint slice.
        self._shard = (dist.rank, dist.world_size)
        self.batches = self._batches()
        # Quick quality checks and the warnings drawn from them (rank 0 alone judges and writes).
        self.probe = None
        if cfg.check_interval and dist.is_main:
            self.probe = QualityProbe.build(cfg.model, self.dataset, seed=cfg.seed, device=self.device)
        self.monitor = Monitor(collapse_advice=collapse_advice(cfg.preset, cfg.augment))
        if payload is not None and ckpt_path is not None:
            restore_state(self.state, payload, cfg, self.batches, ckpt_path)
            if "monitor" in payload:
                self.monitor.load_state_dict(payload["monitor"])
        self.tb = TensorBoardLog(self.run_dir) if cfg.tensorboard and dist.is_main else None
        self.watch = watch

        # 2. The run directory: stale temporary files go, config.json (with its resume history) is written first.
        self.metrics_path = self.run_dir / rundir.METRICS_FILE
        if self.lock is not None:
            self.lock.acquire()  # a new folder is made here; an existing one was locked above
        if dist.is_main:
            for stale in self.run_dir.glob("**/.*.tmp"):  # left by a process killed mid-write
                stale.unlink()
            rundir.write_config(self.run_dir, cfg, history)
            if resume_from is not None and ckpt_path is not None and self._is_own_checkpoint(ckpt_path):
                # A rewind: what came after the checkpoint is another branch now; moved aside, never continued.
                if (discarded := rundir.discard_after(self.run_dir, self.state.step)) is not None:
                    folder, moved = discarded
                    log.info("rewound %s to step %d: moved %s to %s", self.run_dir, self.state.step,
                             ", ".join(moved), folder)  # fmt: skip
            elif resume:
                rundir.trim_metrics(self.metrics_path, self.state.step)
        self.resumed = resume
        self.segments = rundir.Segments(self.run_dir, self.state.step) if dist.is_main else None
        self.train_seconds = 0.0  # training alone: evaluations, checks, samples and checkpoints are not counted
        self.check_seconds = 0.0  # the quick quality checks of this segment
        self.last_check_seconds = 0.0  # what the last one cost: the next is skipped when it would break the budget
        if resume:
            log.info("resumed %s at step %d", self.run_dir, self.state.step)
        self.evaluator = evaluator
        if cfg.eval_every and evaluator is None:
            from ganforge.metrics import evaluate

            def default_evaluator(G: Generator) -> dict[str, Any]:
                return evaluate(G, data=cfg.data, data_dir=cfg.data_dir, n=2_000, device=self.device)

            self.evaluator = default_evaluator
        self.fixed_z = latents(GRID_SIZE, cfg.model.z_dim, seed=cfg.seed).to(self.device)
        self.provenance = {
            "ganforge_version": __version__,
            "preset": cfg.preset,
            "data": cfg.data,
            "dataset": self.dataset.name,
            "seed": cfg.seed,
            "loss": cfg.loss,
        }
        if cfg.model.is_conditional and len(self.dataset.class_names) == cfg.model.num_classes:
            self.provenance["class_names"] = list(self.dataset.class_names)  # sample --per-class labels its rows
        counts = self.dataset.class_counts(cfg.model.num_classes) if cfg.model.is_conditional else None
        if counts is not None:  # the data's class mix: eval draws a conditional G's classes as the data has them
            self.provenance["class_counts"] = counts
        self.warnings_seen: list[str] = []
        self.final_check: dict[str, Any] = {}
        self.eval_notes = Once()  # each evaluation repeats the same data notes: show them once a run
        self.metrics_file: TextIO | None = None

    def _batches(self) -> Batches:
        cfg = self.cfg
        return Batches(
            self.dataset, cfg.batch_size, seed=cfg.seed, device=self.device, shard=self._shard,
            class_balance=cfg.class_balance,
        )  # fmt: skip

    def _is_own_checkpoint(self, path: Path) -> bool:
        try:
            return path.resolve().parent == (self.run_dir / "checkpoints").resolve()
        except OSError:
            return False

    def _resume_checkpoint(self, resume_from: str | Path | None) -> tuple[Path, dict[str, Any]]:
        if resume_from is not None:
            path = Path(resume_from)
            return path, checkpoint.load_checkpoint(path)
        if checkpoint.latest_checkpoint(self.run_dir) is None:
            raise CheckpointError(
                f"--resume: no checkpoint in {self.run_dir}/checkpoints; train without --resume first"
            )
        return checkpoint.load_latest_good(self.run_dir)

    def next_batch(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        """This process's slice of the next global batch (the whole batch on one process)."""
        real, labels = self.batches.next()  # already this rank's slice
        return speed.batch_format(real, self.cfg), labels

    # -- outputs -----------------------------------------------------------------------------------

    def sampler(self) -> Generator:
        G = self.state.G_ema if self.state.G_ema is not None else self.state.G
        # What a loaded generator file carries: evaluations during training draw a conditional G's classes in the
        # data's mix (provenance's class_counts), as `ganforge eval` of the finished run does.
        G.provenance = dict(getattr(self, "provenance", {}))
        return G

    def save_grid(self, path: Path, *, final: bool = False) -> torch.Tensor | None:
        """The 5x5 grid of the fixed noise (a scatter plot of 2,500 points for 2-D data), with provenance chunks.

        final: the generator file was just written from these weights, so the grid names its sha256.
        """
        from ganforge.data.toy import toy_modes
        from ganforge.images import is_points, make_grid, provenance, save_png, save_toy_scatter, to_uint8

        if not self.dist.is_main:
            return None
        G, cfg, step = self.sampler(), self.cfg, self.state.step
        points = is_points(cfg.model.shape)
        z = latents(2_500, cfg.model.z_dim, seed=cfg.seed).to(self.device) if points else self.fixed_z
        labels = torch.arange(len(z), device=self.device) % cfg.model.num_classes if cfg.model.is_conditional else None
        was_training = G.training
        G.eval()
        images = generate(G, z, labels)
        G.train(was_training)
        sha256 = checkpoint.file_sha256(self.run_dir / checkpoint.GENERATOR_FILE) if final else None
        marker = self._marker(sha256)
        mark_text = {} if points else marker.text(*cfg.model.shape[1:])  # a scatter is a plot: not marked
        text = provenance(
            generator_sha256=sha256, seed=cfg.seed, index=f"0-{len(z) - 1}", truncation=1.0,
            label="cycle" if cfg.model.is_conditional else None, nrow=5, preset=cfg.preset, step=step,
            extra=mark_text,
        )  # fmt: skip
        if points:
            save_toy_scatter(images.reshape(-1, 2), path, toy_modes(cfg.data), text, title=f"{cfg.preset} step {step}")
            return None
        save_png(make_grid(marker.apply(to_uint8(images)), nrow=5), path, text)
        return images

    def _marker(self, generator_sha256: str | None) -> Marker:
        """The grids' watermark: payload from the generator file's sha256, else from the run's name and config."""
        if self.watermark is True:
            self.watermark = resolve_key()[0]  # the default key, resolved (and made, on first use) once
        if generator_sha256 is not None:
            return make_marker(self.watermark, generator_sha256, FROM_GENERATOR)
        identity = run_identity(self.run_dir, json.loads(self.cfg.to_json()))
        return make_marker(self.watermark, identity, FROM_RUN)

    def save_all(self) -> None:
        if not self.dist.is_main:
            return
        run_dir, state = self.run_dir, self.state
        extra: dict[str, Any] = {
            "world_size": self.dist.world_size,  # a resume must use as many processes
            "monitor": self.monitor.state_dict(),  # warnings stay raised once per episode across a resume
        }
        checkpoint.save_checkpoint(
            checkpoint.checkpoint_path(run_dir, state.step), state_payload(state, self.cfg, self.batches, extra)
        )
        checkpoint.prune_checkpoints(run_dir, self.cfg.keep_checkpoints)
        checkpoint.save_generator(
            run_dir / checkpoint.GENERATOR_FILE, self.sampler(), self.cfg.model, {**self.provenance, "step": state.step}
        )
        if self.segments is not None:
            self.segments.write(state.step, self.train_seconds)

    def _write_line(self, values: dict[str, Any]) -> None:
        if not self.dist.is_main:
            return
        assert self.metrics_file is not None
        self.metrics_file.write(json.dumps(values) + "\n")
        self.metrics_file.flush()

    # -- recovery ----------------------------------------------------------------------------------

    def _recover(self, reason: str) -> None:
        """A non-finite loss: the first time, roll back to the last good checkpoint with both learning rates
        halved; the second time, stop with a one-line error."""
        good = checkpoint.latest_checkpoint(self.run_dir)
        if self.state.rollbacks >= 1:
            where = f"the last good checkpoint is {good}" if good else "no checkpoint was saved yet"
            raise TrainingError(
                f"{reason}, again after a rollback with halved learning rates; {where}; "
                "lower the learning rates (--lr-g, --lr-d) or try --loss hinge or --r1 10"
            )
        rollbacks = self.state.rollbacks + 1
        self.state = build_state(self.cfg, self.device, self.dist)
        self.batches = self._batches()
        if good is not None:
            path, payload = checkpoint.load_latest_good(self.run_dir)
            restore_state(self.state, payload, self.cfg, self.batches, path)
        self.state.rollbacks = rollbacks
        for opt in (self.state.opt_g, self.state.opt_d):
            for group in opt.param_groups:
                group["lr"] = group["lr"] / 2  # saved in the optimizer state, so a resumed run keeps it
                if "initial_lr" in group:  # a decaying run: halve the base the schedule scales
                    group["initial_lr"] = group["initial_lr"] / 2
        message = (
            f"nonfinite: {reason}; rolled back to step {self.state.step} and halved both learning rates "
            f"(lr_g {self.state.opt_g.param_groups[0]['lr']:g}, lr_d {self.state.opt_d.param_groups[0]['lr']:g})"
        )
        log.warning("warning: %s", message)
        self.warnings_seen.append(message)
        if self.dist.is_main:
            assert self.metrics_file is not None
            self.metrics_file.close()  # the trim replaces the file: write on through a new handle
            rundir.trim_metrics(self.metrics_path, self.state.step)
            self.metrics_file = open(self.metrics_path, "a")  # noqa: SIM115 (closed by run())
        self._write_line({"step": self.state.step, "event": "rollback", "warnings": [message]})

    # -- the loop ----------------------------------------------------------------------------------

    def run(self) -> RunResult:
        """Train to cfg.steps (or a stop); a fresh run that fails on bad input or a full disk takes back its files."""
        try:
            return self._run()
        except GanforgeError:
            if not self.resumed and checkpoint.latest_checkpoint(self.run_dir) is None:
                self._remove_partial_run()
            raise
        finally:
            if self.lock is not None:
                self.lock.release()

    def _remove_partial_run(self) -> None:
        """A fresh run that never saved a checkpoint leaves nothing: what it wrote goes (and its folder, if new)."""
        if not self.dist.is_main:
            return
        import shutil

        for name in (rundir.CONFIG_FILE, rundir.METRICS_FILE, rundir.SEGMENTS_FILE, "report.html", "samples.png"):
            (self.run_dir / name).unlink(missing_ok=True)
        for name in ("samples", "tb", "checkpoints"):
            shutil.rmtree(self.run_dir / name, ignore_errors=True)
        if self.lock is not None:
            self.lock.release()
            self.lock.path.unlink(missing_ok=True)
        if self.created_dir:
            with contextlib.suppress(OSError):
                self.run_dir.rmdir()  # only when empty: nothing of the user's is ever removed
        log.info("removed the partial run in %s (no checkpoint was saved)", self.run_dir)

    def _run(self) -> RunResult:
        cfg, device = self.cfg, self.device
        start_step = self.state.step
        seconds_at_log, step_at_log = 0.0, self.state.step
        t_start = time.perf_counter()
        last: dict[str, float] = {}
        interrupted = False
        nonfinite = torch.zeros((), dtype=torch.bool, device=device)
        try:
            if self.dist.is_main:
                self.metrics_file = open(self.metrics_path, "a")  # noqa: SIM115 (reopened by a rollback)
            with stop_requests() as stop:
                while self.state.step < cfg.steps:
                    state = self.state
                    next_step = state.step + 1
                    # From the config alone, the same on every rank: with_stats below decides an all-reduce, so
                    # it must not depend on rank 0's probe (a desync hung the ranks when log_every was 0).
                    check_due = bool(cfg.check_interval) and (
                        next_step % cfg.check_interval == 0 or next_step == cfg.steps
                    )
                    with_stats = cfg.log_every > 0 and next_step % cfg.log_every == 0
                    with_stats = with_stats or next_step == cfg.steps or check_due
                    t0 = time.perf_counter()
                    out = train_step(state, self.next_batch, cfg, with_stats=with_stats)
                    # A finiteness check syncs a GPU, so there it waits for the next log or checkpoint step; on
                    # the CPU it costs nothing and names the exact step. Nothing non-finite is ever saved.
                    nonfinite |= ~torch.isfinite(out["loss_d"] + out["loss_g"])
                    self.train_seconds += time.perf_counter() - t0
                    checkpoint_due = cfg.checkpoint_every and state.step % cfg.checkpoint_every == 0
                    if self.dist.is_distributed:  # every rank stops, or rolls back, after the same step
                        stopping, bad = distributed.agree_any([bool(stop), nonfinite], self.dist)
                    else:
                        stopping = bool(stop)
                        sync_point = device.type == "cpu" or with_stats or checkpoint_due or stopping
                        bad = (sync_point or state.step == cfg.steps) and bool(nonfinite)
                    if bad:
                        reason = (
                            f"the loss became non-finite by step {state.step} "
                            f"(loss_d {out['loss_d'].item()}, loss_g {out['loss_g'].item()})"
                        )
                        self._recover(reason)
                        nonfinite.zero_()
                        seconds_at_log, step_at_log = self.train_seconds, self.state.step
                        continue
                    logged: dict[str, Any] | None = None
                    if with_stats:
                        out = distributed.reduce_mean(out, self.dist)  # the mean over ranks; one all-reduce
                        logged = {k: round(float(v), 6) for k, v in out.items()}
                        steps_done = state.step - step_at_log
                        logged["img_per_s"] = round(
                            steps_done * cfg.batch_size / max(self.train_seconds - seconds_at_log, 1e-9), 1
                        )
                        seconds_at_log, step_at_log = self.train_seconds, state.step
                        if self.dist.is_main:
                            self._observe(logged, check_due=check_due)
                        self._write_line({"step": state.step, **logged})
                        log.info("%s", log_line(state.step, logged))
                        for warning in logged.get("warnings", []):
                            log.warning("warning: %s", warning)
                    if state.step == cfg.steps:
                        last = {k: float(v) for k, v in out.items()}
                    if cfg.sample_every and state.step % cfg.sample_every == 0:
                        images = self.save_grid(self.run_dir / "samples" / f"step_{state.step:07d}.png")
                        if self.tb is not None and images is not None:
                            self.tb.image(state.step, "samples", images)
                        if self.watch:
                            self.write_report()
                    if checkpoint_due or state.step == cfg.steps:
                        self.save_all()
                    if self.on_step:
                        self.on_step(state.step, logged)
                    if stopping:
                        interrupted = True
                        self.save_all()
                        log.warning("stopped at step %d; checkpoint saved; continue with --resume", state.step)
                        break
        finally:
            if self.metrics_file is not None:
                self.metrics_file.close()
            if self.tb is not None:
                self.tb.close()
        seconds = time.perf_counter() - t_start
        samples_path = None
        if not interrupted:
            if self.state.step == start_step:  # nothing left to train: the run was already at cfg.steps
                log.info("%s is already at step %d of %d", self.run_dir, self.state.step, cfg.steps)
                self.save_all()
            samples_path = self.run_dir / "samples.png"
            self.save_grid(samples_path, final=True)
        if self.segments is not None:
            self.segments.write(self.state.step, self.train_seconds)
        self.write_report()
        if self.dist.is_main:  # RUN/MODEL_CARD.md, with the identity of the data in memory
            model_card.refresh(self.run_dir, training_data=model_card.data_identity(self.dataset))
        steps_trained = self.state.step - start_step
        return RunResult(
            run_dir=self.run_dir,
            step=self.state.step,
            steps_trained=steps_trained,
            seconds=seconds,
            train_seconds=self.train_seconds,
            img_per_s=steps_trained * cfg.batch_size / self.train_seconds if self.train_seconds > 0 else 0.0,
            final=last,
            generator_path=self.run_dir / checkpoint.GENERATOR_FILE,
            samples_path=samples_path if samples_path and samples_path.exists() else None,
            interrupted=interrupted,
            quality=self.final_check,
            warnings=[code for _, code in self.monitor.raised],
            summary=self._verdict(),
        )

    def _verdict(self) -> str:
        if not self.final_check:
            return ""
        codes = [c for _, c in self.monitor.raised]
        advice = collapse_advice(self.cfg.preset, self.cfg.augment)
        return summary_line(self.final_check, codes, step=self.state.step, advice=advice)

    def _observe(self, logged: dict[str, Any], *, check_due: bool) -> None:
        """Add the due evaluation and quality check to a log row, then the warnings they raise (once an episode)."""
        cfg, step = self.cfg, self.state.step
        if self.evaluator and cfg.eval_every and step % cfg.eval_every == 0:
            with quiet_repeats(self.eval_notes):
                logged.update(scalars(self.evaluator(self.sampler())))
        if check_due and self.probe is not None and (step == cfg.steps or self._check_affordable()):
            started = time.perf_counter()
            if step == cfg.steps:  # the end-of-run figures, with FID on 2,000 samples where an extractor exists
                logged.update(self.probe.final_check(self.sampler()))
                self.final_check = {k: v for k, v in logged.items() if k not in ("warnings",)}
            else:
                logged.update(self.probe.check(self.sampler()))
                self.last_check_seconds = time.perf_counter() - started
            self.check_seconds += time.perf_counter() - started
        warnings = self.monitor.observe(step, logged)
        if warnings:
            logged["warnings"] = warnings
        if self.tb is not None:
            self.tb.scalars(step, logged)

    def _check_affordable(self) -> bool:
        """With the automatic cadence (check_every -1), a due check runs only while the checks so far and this one
        stay within CHECK_SHARE of the training time so far (the first always runs; the end-of-run one too)."""
        if self.cfg.check_every != -1:
            return True
        return self.check_seconds + self.last_check_seconds <= CHECK_SHARE * self.train_seconds

    def write_report(self) -> None:
        """RUN/report.html from what the run wrote so far; a report that fails never ends the run."""
        if not self.dist.is_main:
            return
        from ganforge.report import write_report

        try:
            write_report([self.run_dir], self.run_dir / "report.html")
        except GanforgeError as e:
            log.warning("warning: the report was not written: %s", e)
