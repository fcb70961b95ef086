"""Checkpoints: round trip, architecture checks, files that are not checkpoints, atomic writes."""

from __future__ import annotations

import os

import pytest
import torch

from l2l_helpers.meta import checkpoints as ckpt_mod
from l2l_helpers.meta.checkpoints import load_optimizer, load_state_into, read_checkpoint, save_checkpoint
from l2l_helpers.optimizer.coordinatewise_lstm import CoordinatewiseLSTM, OptimizerConfig


def make_net(seed=0, **kwargs):
    """A randomly initialised optimizer network."""
    torch.manual_seed(seed)
    return CoordinatewiseLSTM(OptimizerConfig(**{"num_layers": 2, "hidden_size": 4, **kwargs}))


def outputs(net):
    """The net's updates and state on a fixed input over two steps."""
    grad = torch.linspace(-1, 1, 7) ** 3
    with torch.no_grad():
        u1, s = net(grad, net.init_state(7))
        u2, s = net(grad * 0.1, s)
    return u1, u2, s


def test_round_trip(tmp_path):
    """load_optimizer rebuilds the same architecture and weights (same outputs) and keeps the metadata."""
    net = make_net(preprocessing="log_sign_smooth", p=5.0, output_scale=0.01, hidden_size=5)
    meta = {"problem": "quadratic", "seed": 3, "lr": 1e-3, "nested": {"a": [1, 2]}, "path": tmp_path}
    path = save_checkpoint(tmp_path / "sub" / "opt.pt", net, meta)
    assert path.is_file() and path.parent.name == "sub"
    loaded, metadata = load_optimizer(path)
    assert loaded.config == net.config
    for a, b in zip(outputs(net), outputs(loaded), strict=True):
        assert torch.equal(a, b)
    for k, v in net.state_dict().items():
        assert torch.equal(v, loaded.state_dict()[k])
    assert metadata == {"problem": "quadratic", "seed": 3, "lr": 1e-3, "nested": {"a": [1, 2]}, "path": str(tmp_path)}


def test_payload_and_weights_only_load(tmp_path):
    """The file is a plain dict that torch.load(weights_only=True) reads, with format and version."""
    net = make_net()
    path = save_checkpoint(tmp_path / "opt.pt", net, training={"epoch": 2})
    payload = torch.load(path, weights_only=True)
    assert payload["format"] == "l2l-optimizer" and payload["version"] == 1
    assert payload["config"] == net.config.to_dict()
    assert payload["metadata"] == {} and payload["training"] == {"epoch": 2}
    assert read_checkpoint(path)["training"] == {"epoch": 2}


def test_file_mode_is_normal(tmp_path):
    """The checkpoint gets an ordinary file's permissions (not mkstemp's private 0600)."""
    path = save_checkpoint(tmp_path / "opt.pt", make_net())
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask


@pytest.mark.parametrize(
    ("other", "field"),
    [
        ({"hidden_size": 5}, "hidden_size"),
        ({"num_layers": 1}, "num_layers"),
        ({"preprocessing": "none"}, "preprocessing"),
        ({"output_scale": 1.0}, "output_scale"),
        ({"p": 5.0}, "p"),
    ],
)
def test_load_into_other_architecture(tmp_path, other, field):
    """Loading into a net of another architecture is a ValueError naming the field that differs."""
    path = save_checkpoint(tmp_path / "opt.pt", make_net())
    target = make_net(seed=1, **other)
    before = {k: v.clone() for k, v in target.state_dict().items()}
    with pytest.raises(
        ValueError, match=rf"another architecture.*\b{field}: checkpoint .* vs network .*load_optimizer"
    ):
        load_state_into(target, read_checkpoint(path), source=str(path))
    for k, v in target.state_dict().items():
        assert torch.equal(v, before[k])


def test_load_into_same_architecture(tmp_path):
    """load_state_into copies the weights into a net of the same architecture."""
    net = make_net(seed=0)
    path = save_checkpoint(tmp_path / "opt.pt", net)
    target = make_net(seed=1)
    assert not torch.equal(outputs(target)[0], outputs(net)[0])
    load_state_into(target, read_checkpoint(path))
    assert torch.equal(outputs(target)[0], outputs(net)[0])


def test_random_bytes_file(tmp_path):
    """A file of random bytes is a ValueError saying it is not an l2l optimizer checkpoint."""
    path = tmp_path / "junk.pt"
    path.write_bytes(os.urandom(2048))
    with pytest.raises(ValueError, match=r"not an l2l optimizer checkpoint.*save_checkpoint"):
        load_optimizer(path)


@pytest.mark.parametrize(
    "obj",
    [{"state_dict": {}}, [1, 2, 3], torch.zeros(3), {"format": "something-else", "version": 1}],
    ids=["dict", "list", "tensor", "other-format"],
)
def test_torch_file_that_is_not_a_checkpoint(tmp_path, obj):
    """A torch file without the l2l format key is a ValueError saying so."""
    path = tmp_path / "other.pt"
    torch.save(obj, path)
    with pytest.raises(ValueError, match="not an l2l optimizer checkpoint"):
        read_checkpoint(path)


def test_plain_state_dict_is_not_a_checkpoint(tmp_path):
    """A bare net.state_dict() saved with torch.save is rejected with the same message."""
    path = tmp_path / "weights.pt"
    torch.save(make_net().state_dict(), path)
    with pytest.raises(ValueError, match="not an l2l optimizer checkpoint"):
        load_optimizer(path)


def test_other_version(tmp_path):
    """A checkpoint of another format version is a ValueError naming the versions."""
    path = save_checkpoint(tmp_path / "opt.pt", make_net())
    payload = torch.load(path, weights_only=True)
    payload["version"] = 2
    torch.save(payload, path)
    with pytest.raises(ValueError, match="version 2"):
        read_checkpoint(path)


def test_missing_file(tmp_path):
    """A missing path (or a folder) is a FileNotFoundError."""
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_optimizer(tmp_path / "nope.pt")
    with pytest.raises(FileNotFoundError):
        read_checkpoint(tmp_path)


def test_atomic_write_keeps_old_checkpoint(tmp_path, monkeypatch):
    """If torch.save fails mid-way the previous checkpoint is intact and no temporary file is left."""
    good = make_net(seed=0)
    path = save_checkpoint(tmp_path / "opt.pt", good, {"which": "good"})
    original = path.read_bytes()

    def failing_save(obj, f, *args, **kwargs):
        f.write(b"PK\x03\x04 half a file")
        raise RuntimeError("disk full")

    monkeypatch.setattr(ckpt_mod.torch, "save", failing_save)
    with pytest.raises(RuntimeError, match="disk full"):
        save_checkpoint(path, make_net(seed=1), {"which": "bad"})
    monkeypatch.undo()
    assert path.read_bytes() == original
    assert [p.name for p in tmp_path.iterdir()] == ["opt.pt"]
    net, meta = load_optimizer(path)
    assert meta == {"which": "good"}
    assert torch.equal(outputs(net)[0], outputs(good)[0])


def test_atomic_write_on_interrupt(tmp_path, monkeypatch):
    """A KeyboardInterrupt during the write also leaves no temporary file and no destination file."""

    def interrupted_save(obj, f, *args, **kwargs):
        f.write(b"partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(ckpt_mod.torch, "save", interrupted_save)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(tmp_path / "new.pt", make_net())
    assert list(tmp_path.iterdir()) == []


def test_overwrite(tmp_path):
    """Saving over an existing checkpoint replaces it."""
    path = save_checkpoint(tmp_path / "opt.pt", make_net(seed=0), {"v": 1})
    save_checkpoint(path, make_net(seed=1, hidden_size=6), {"v": 2})
    net, meta = load_optimizer(path)
    assert meta == {"v": 2} and net.config.hidden_size == 6
    assert [p.name for p in tmp_path.iterdir()] == ["opt.pt"]


def test_an_interrupt_during_a_write_arrives_after_the_file_is_complete(tmp_path, monkeypatch):
    """Ctrl-C inside torch.save used to break its zip writer (a RuntimeError hid the interrupt): now the
    KeyboardInterrupt comes after the checkpoint is written and in place, and the old handler is back."""
    import signal

    from l2l_helpers.meta import checkpoints

    real_save = torch.save

    def save_with_ctrl_c(obj, fh):
        signal.raise_signal(signal.SIGINT)  # as if the user pressed Ctrl-C mid-write
        real_save(obj, fh)

    monkeypatch.setattr(checkpoints.torch, "save", save_with_ctrl_c)
    # Python's own Ctrl-C handler, whatever the shell gave us (a background job starts with SIGINT ignored)
    outer = signal.signal(signal.SIGINT, signal.default_int_handler)
    path = tmp_path / "net.pt"
    try:
        with pytest.raises(KeyboardInterrupt):
            checkpoints.atomic_torch_save({"x": torch.arange(3)}, path)
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    finally:
        signal.signal(signal.SIGINT, outer)
    monkeypatch.undo()
    assert torch.equal(torch.load(path)["x"], torch.arange(3))
    assert [p.name for p in tmp_path.iterdir()] == ["net.pt"]  # no temporary file left


def test_an_ignored_interrupt_stays_ignored_during_a_write(tmp_path, monkeypatch):
    """A process started with SIGINT ignored (nohup, a background job) is not stopped by a checkpoint write."""
    import signal

    from l2l_helpers.meta import checkpoints

    real_save = torch.save

    def save_with_ctrl_c(obj, fh):
        signal.raise_signal(signal.SIGINT)
        real_save(obj, fh)

    monkeypatch.setattr(checkpoints.torch, "save", save_with_ctrl_c)
    outer = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        checkpoints.atomic_torch_save({"x": torch.arange(3)}, tmp_path / "net.pt")  # no KeyboardInterrupt
        assert signal.getsignal(signal.SIGINT) == signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, outer)
    monkeypatch.undo()
    assert torch.equal(torch.load(tmp_path / "net.pt")["x"], torch.arange(3))


@pytest.mark.parametrize("where", ["torch.save", "mkstemp"])
def test_full_disk_is_a_checkpoint_write_error_and_keeps_the_old_file(tmp_path, monkeypatch, where):
    """ENOSPC while writing (or while creating the temporary file) raises CheckpointWriteError naming the file and
    the cause; the previous checkpoint is intact and no temporary file is left."""
    import errno

    from l2l_helpers.meta.checkpoints import CheckpointWriteError

    good = make_net(seed=0)
    path = save_checkpoint(tmp_path / "opt.pt", good, {"which": "good"})
    full = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def failing_save(obj, f, *args, **kwargs):
        f.write(b"PK\x03\x04 half a file")
        raise full

    def failing_mkstemp(*args, **kwargs):
        raise full

    if where == "torch.save":
        monkeypatch.setattr(ckpt_mod.torch, "save", failing_save)
    else:
        monkeypatch.setattr(ckpt_mod.tempfile, "mkstemp", failing_mkstemp)
    with pytest.raises(CheckpointWriteError) as caught:
        save_checkpoint(path, make_net(seed=1), {"which": "bad"})
    monkeypatch.undo()
    error = caught.value
    assert isinstance(error, OSError) and error.errno == errno.ENOSPC and error.disk_full
    assert str(error) == f"could not write checkpoint {path}: [Errno 28] No space left on device"
    assert [p.name for p in tmp_path.iterdir()] == ["opt.pt"]
    net, meta = load_optimizer(path)
    assert meta == {"which": "good"}
    assert torch.equal(outputs(net)[0], outputs(good)[0])
