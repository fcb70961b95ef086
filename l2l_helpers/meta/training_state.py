"""What keeps a meta-training run safe: roll back, checkpoint, resume (paper-independent plumbing of
:func:`~l2l_helpers.meta.meta_training.meta_train`; README, "Reliability").

* a snapshot of everything an epoch changes (phi, Adam's state, the records, the best weights so far) is taken
  after every finished epoch: an interruption or a phi that became non-finite goes back to it;
* a checkpoint file holds the best weights (what users load) and the training state (what ``resume`` needs),
  written atomically;
* ``resume`` restores the epoch counter, the meta-optimizer and the RNG, so a resumed run ends bit for bit where
  an uninterrupted one would.
"""

from __future__ import annotations

import copy
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from l2l_helpers.evaluation.loops import EvalResult
from l2l_helpers.meta.checkpoints import CheckpointWriteError, load_state_into, read_checkpoint, save_checkpoint
from l2l_helpers.optimizer.grouped_lstm import OptimizerNet, build_optimizer

if TYPE_CHECKING:  # meta_training imports this module
    from l2l_helpers.meta.config import MetaTrainConfig


@dataclass
class MetaTrainResult:
    """What meta-training produced. ``net`` holds the best weights on validation when validation ran."""

    history: list[dict[str, Any]] = field(default_factory=list)  # one record per epoch
    val_history: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int | None = None
    best_val: float = math.inf
    best_state: dict[str, torch.Tensor] | None = None
    last_state: dict[str, torch.Tensor] | None = None
    skipped: int = 0  # meta-steps skipped because the loss or meta-gradient was not finite or exploded
    events: list[str] = field(default_factory=list)  # what was skipped or restored, and when
    interrupted: bool = False


@dataclass
class _Snapshot:
    """Everything meta-training changes, at the end of an epoch: what an interruption rolls back to."""

    epoch: int
    net_state: dict[str, torch.Tensor]
    opt_state: dict[str, Any]
    n_history: int
    n_val: int
    best: tuple[int | None, float, dict[str, torch.Tensor] | None]

    @classmethod
    def take(cls, epoch: int, net: OptimizerNet, opt: torch.optim.Optimizer, result: MetaTrainResult) -> _Snapshot:
        return cls(
            epoch,
            copy.deepcopy(net.state_dict()),
            copy.deepcopy(opt.state_dict()),
            len(result.history),
            len(result.val_history),
            (result.best_epoch, result.best_val, result.best_state),
        )

    def restore(self, net: OptimizerNet, opt: torch.optim.Optimizer, result: MetaTrainResult) -> None:
        net.load_state_dict(self.net_state)
        opt.load_state_dict(copy.deepcopy(self.opt_state))
        del result.history[self.n_history :], result.val_history[self.n_val :]
        result.best_epoch, result.best_val, result.best_state = self.best


def _finite(net: OptimizerNet) -> bool:
    return all(bool(torch.isfinite(p).all()) for p in net.parameters())


def _saved_epoch(path: str | Path) -> int | None:
    """The epoch of the resumable checkpoint at ``path``, or None if there is none (or it cannot be read)."""
    try:
        training = read_checkpoint(path).get("training")
    except (OSError, ValueError):
        return None
    return training.get("epoch") if training else None


def _cpu_copy(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().clone() for k, v in state.items()}


class TrainingState:
    """The result being built, the last good snapshot, and the checkpoint file of one :func:`meta_train` run."""

    def __init__(
        self,
        net: OptimizerNet,
        meta_optimizer: torch.optim.Optimizer,
        config: MetaTrainConfig,
        checkpoint_path: str | Path | None,
        metadata: dict[str, Any],
        progress: bool = True,
    ) -> None:
        self.net, self.opt, self.config = net, meta_optimizer, config
        self.path, self.metadata, self.progress = checkpoint_path, metadata, progress
        self.result = MetaTrainResult()
        self.good = _Snapshot.take(0, net, meta_optimizer, self.result)

    def resume(self, source: str | Path) -> int:
        """Load a checkpoint's training state into the run; returns the epoch to continue from."""
        payload = read_checkpoint(source)
        load_state_into(self.net, payload, source=str(source))
        training = payload.get("training")
        if not training:
            raise ValueError(f"{source} holds weights only, no training state to resume from")
        self.net.load_state_dict(training["last_state"])
        self.opt.load_state_dict(training["meta_optimizer"])
        result = self.result
        result.history, result.val_history = training["history"], training["val_history"]
        result.best_epoch, result.best_val = training["best_epoch"], training["best_val"]
        result.best_state, result.skipped = training["best_state"], training["skipped"]
        result.events = list(training.get("events", []))
        if training.get("torch_rng") is not None:
            torch.set_rng_state(training["torch_rng"])
        self.good = _Snapshot.take(training["epoch"], self.net, self.opt, result)
        return training["epoch"]

    def report(self, message: str) -> None:
        """Record an event (a skipped step, a restore) and show it above the progress bar."""
        self.result.events.append(message)
        if self.progress:
            from tqdm.auto import tqdm

            tqdm.write(f"meta-training: {message}")

    def after_trajectory(self, epoch: int, skips: list[str]) -> None:
        """Count and report skipped meta-steps; a phi that still became non-finite goes back to the last snapshot."""
        self.result.skipped += len(skips)
        for why in skips:
            self.report(f"epoch {epoch + 1}: meta-step skipped ({why}); phi kept as it was")
        if not _finite(self.net):
            self.good.restore(self.net, self.opt, self.result)
            self.report(f"epoch {epoch + 1}: phi became non-finite; restored the optimizer of epoch {self.good.epoch}")

    def validate(self, val: EvalResult, epoch: int) -> float:
        """Record a validation (``config.select``: sum of losses or final loss) and keep the best weights."""
        raw = val.mean_sum if self.config.select == "sum" else val.mean_final
        score = raw if math.isfinite(raw) else math.inf
        self.result.val_history.append(
            {"epoch": epoch, "val_meta_loss": score, "val_sum": val.mean_sum, "val_final": val.mean_final}
        )
        if score < self.result.best_val:
            self.result.best_val, self.result.best_epoch = score, epoch
            self.result.best_state = _cpu_copy(self.net.state_dict())
        return score

    def end_epoch(self, epochs_done: int) -> None:
        """Snapshot the finished epoch; write the checkpoint every ``config.checkpoint_every`` epochs."""
        self.good = _Snapshot.take(epochs_done, self.net, self.opt, self.result)
        every = self.config.checkpoint_every
        if every and epochs_done % every == 0:
            self.save(self.good)

    def save(self, snap: _Snapshot) -> None:
        """Write the checkpoint: the best weights so far (what a user loads), the last ones (what resumes)."""
        if self.path is None:
            return
        result, config = self.result, self.config
        best_epoch, best_val, best_state = snap.best
        snapshot = build_optimizer(self.net.config)
        snapshot.load_state_dict(best_state if best_state is not None else snap.net_state)
        training = {
            "config": asdict(config),
            "epoch": snap.epoch,
            "last_state": snap.net_state,
            "meta_optimizer": snap.opt_state,
            "history": result.history[: snap.n_history],
            "val_history": result.val_history[: snap.n_val],
            "best_epoch": best_epoch,
            "best_val": best_val,
            "best_state": best_state,
            "skipped": result.skipped,
            "events": result.events,
            "torch_rng": torch.get_rng_state(),
        }
        info = {**self.metadata, "epochs_done": snap.epoch, "best_epoch": best_epoch, "best_val_meta_loss": best_val}
        info["val_criterion"] = "sum of losses" if config.select == "sum" else "mean final loss"
        try:
            save_checkpoint(self.path, snapshot, info, training)
        except CheckpointWriteError as exc:  # e.g. a full disk: say which epoch was lost and which one is kept
            exc.epoch, exc.last_epoch = snap.epoch, _saved_epoch(self.path)
            raise

    def interrupted(self) -> MetaTrainResult:
        """Keep what was trained: roll back to the last finished epoch, save it, and say how to continue."""
        self.result.interrupted = True
        self.good.restore(self.net, self.opt, self.result)
        self.result.last_state = _cpu_copy(self.good.net_state)
        self.save(self.good)
        where = f"; saved to {self.path}, continue with resume=" if self.path else ""
        print(f"meta-training interrupted after epoch {self.good.epoch}{where}")
        return self.result

    def finish(self) -> MetaTrainResult:
        """Save the end of training and leave the best validated weights in the network."""
        self.result.last_state = _cpu_copy(self.net.state_dict())
        self.save(self.good)
        if self.result.skipped and self.progress:
            print(f"meta-training: {self.result.skipped} meta-steps skipped (see result.events)")
        if self.result.best_state is not None:
            self.net.load_state_dict(self.result.best_state)
        return self.result
