"""Save and load optimizer networks with their architecture and training metadata (notebook 04).

A checkpoint is a dict written with ``torch.save``::

    {"format": "l2l-optimizer", "version": 1, "config": {...}, "state_dict": {...},
     "metadata": {...}, "training": {...} or None}

``config`` rebuilds the network, so a checkpoint loads without knowing its architecture; loading into
a network of another architecture is an error that says which sizes differ. Writes are atomic: the
file is written next to its destination and renamed over it, so a crash never leaves half a file.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import signal
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from l2l_helpers.optimizer.coordinatewise_lstm import CoordinatewiseLSTM
from l2l_helpers.optimizer.grouped_lstm import (
    GroupedConfig,
    GroupedLSTM,
    build_optimizer,
    config_from_dict,
    describe_config,
)

FORMAT = "l2l-optimizer"
VERSION = 1


class CheckpointWriteError(OSError):
    """A checkpoint could not be written (a full disk, a read-only folder); the file it was to replace is intact.

    ``epoch`` is the epoch that was being saved and ``last_epoch`` that of the checkpoint still at ``path`` (None if
    there is none), when the writer knows them (:meth:`~l2l_helpers.meta.training_state.TrainingState.save`).
    """

    def __init__(self, path: Path, cause: OSError) -> None:
        super().__init__(cause.errno, cause.strerror)
        self.path, self.cause = path, cause
        self.epoch: int | None = None
        self.last_epoch: int | None = None

    @property
    def disk_full(self) -> bool:
        """Whether the write failed for lack of space (or of quota)."""
        return self.errno in (errno.ENOSPC, errno.EDQUOT)

    def __str__(self) -> str:
        at = f" (epoch {self.epoch})" if self.epoch is not None else ""
        text = f"could not write checkpoint {self.path}{at}: {self.cause}"
        if self.epoch is None:
            return text
        if self.last_epoch is None:
            return f"{text}; no earlier checkpoint is at {self.path}"
        return f"{text}; the last good checkpoint is {self.path} (epoch {self.last_epoch})"


@contextlib.contextmanager
def _interrupts_deferred() -> Iterator[None]:
    """Hold Ctrl-C / SIGTERM until the block ends, then deliver it to the handler that was in place.

    A KeyboardInterrupt raised inside ``torch.save`` breaks its zip writer, whose clean-up then fails with a
    RuntimeError that hides the interrupt: the run would end with an error instead of saving and stopping.
    Only the main thread can handle signals; elsewhere the block runs as it is.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    old = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    for sig in old:
        signal.signal(sig, lambda signum, frame: caught.append(signum))
    try:
        yield
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)
        if caught:
            handler = old[caught[0]]
            if callable(handler):
                handler(caught[0], None)  # e.g. Python's KeyboardInterrupt, or the CLI's SIGTERM handler
            elif handler == signal.SIG_DFL:
                os.kill(os.getpid(), caught[0])


def atomic_torch_save(obj: Any, path: str | Path) -> Path:
    """``torch.save`` to a temporary file in the same folder, fsync, then rename over ``path``.

    An interrupt that arrives meanwhile is delivered once the file is complete (:func:`_interrupts_deferred`).
    A failed write (e.g. a full disk) raises :class:`CheckpointWriteError` and leaves ``path`` as it was.
    """
    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        with _interrupts_deferred():
            with os.fdopen(fd, "wb") as fh:
                torch.save(obj, fh)
                fh.flush()
                os.fsync(fh.fileno())
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes the file private; give it a normal file's mode
            os.replace(tmp, path)
    except BaseException as exc:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)
        if isinstance(exc, OSError) and not isinstance(exc, CheckpointWriteError):
            raise CheckpointWriteError(path, exc) from exc
        raise
    return path


def save_checkpoint(
    path: str | Path,
    net: CoordinatewiseLSTM | GroupedLSTM,
    metadata: dict[str, Any] | None = None,
    training: dict[str, Any] | None = None,
) -> Path:
    """Write ``net`` (weights + architecture), free-form ``metadata`` and optional resumable ``training`` state."""
    payload = {
        "format": FORMAT,
        "version": VERSION,
        "config": net.config.to_dict(),
        "state_dict": {k: v.detach().cpu() for k, v in net.state_dict().items()},
        # plain JSON types only, so that the file loads with torch.load(weights_only=True)
        "metadata": json.loads(json.dumps(metadata or {}, default=str)),
        "training": training,
    }
    return atomic_torch_save(payload, path)


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load and validate a checkpoint dict; ``ValueError`` with what to do if the file is not one."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a file that is not a torch archive
        raise ValueError(
            f"{path} is not an l2l optimizer checkpoint (torch.load failed: {str(exc).splitlines()[0]}); "
            "pass a file written by l2l train or save_checkpoint"
        ) from exc
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ValueError(f"{path} is a torch file but not an l2l optimizer checkpoint (no format={FORMAT!r} key)")
    if payload.get("version") != VERSION:
        raise ValueError(f"{path} has checkpoint version {payload.get('version')}, this code reads {VERSION}")
    return payload


def load_state_into(net: CoordinatewiseLSTM | GroupedLSTM, payload: dict[str, Any], source: str = "checkpoint") -> None:
    """Copy a checkpoint's weights into ``net``; ``ValueError`` naming the differences if architectures differ
    (one LSTM against one per parameter group, other groups, or other sizes)."""
    theirs = config_from_dict(payload["config"])
    if type(theirs) is not type(net.config) or getattr(theirs, "names", None) != getattr(net.config, "names", None):
        raise ValueError(
            f"{source} holds {describe_config(theirs)} but this network has {describe_config(net.config)}; "
            "build the network with load_optimizer(path) instead, which uses the checkpoint's own config"
        )
    pairs = (
        [(f" (group {name})", dict(theirs.groups)[name], cfg) for name, cfg in net.config.groups]
        if isinstance(theirs, GroupedConfig)
        else [("", theirs, net.config)]
    )
    diffs = [
        f"{k}{where}: checkpoint {v!r} vs network {getattr(mine, k)!r}"
        for where, stored, mine in pairs
        for k, v in stored.to_dict().items()
        if getattr(mine, k) != v
    ]
    if diffs or theirs != net.config:
        raise ValueError(
            f"{source} holds an optimizer of another architecture ({'; '.join(diffs)}); "
            "build the network with load_optimizer(path) instead, which uses the checkpoint's own config"
        )
    net.load_state_dict(payload["state_dict"])


def load_optimizer(
    path: str | Path, device: torch.device | str = "cpu"
) -> tuple[CoordinatewiseLSTM | GroupedLSTM, dict[str, Any]]:
    """Rebuild the optimizer network stored in ``path`` (one LSTM, or one per parameter group); returns (net,
    metadata)."""
    payload = read_checkpoint(path)
    net = build_optimizer(config_from_dict(payload["config"]))
    load_state_into(net, payload, source=str(path))
    return net.to(device), payload["metadata"]
