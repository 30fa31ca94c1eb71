"""latticaswift: the Python client of Lattica-Swift's local trainer API (Docs/PYTHON.md).

- ``latticaswift.torch.Optimizer``: wraps a torch optimizer; averages with peers every
  ``inner_steps`` steps through the local latticad, in the background by default.
- ``Session.average(params) -> params``: the numpy-level call, for JAX or anything else.
- ``create_run`` / ``join_run``: put the local daemon in a run without its built-in trainer.
"""

from .control import ControlClient, default_socket, TRAINER_API_VERSION
from .errors import (BadRequest, DaemonGone, DaemonNotFound, LatticaError, RunFinished, ShapeMismatch,
                     SharedMemoryError, SlotBusy, StepInProgress, UnknownRun, UnsupportedVersion)
from .events import Attached, Event, Failed, Finished, OuterStep, Started
from .session import Pending, Session

__all__ = ["ControlClient", "default_socket", "TRAINER_API_VERSION", "BadRequest", "DaemonGone", "DaemonNotFound",
           "LatticaError", "RunFinished", "ShapeMismatch", "SharedMemoryError", "SlotBusy", "StepInProgress", "UnknownRun",
           "UnsupportedVersion", "Attached", "Event", "Failed", "Finished", "OuterStep", "Started", "Pending", "Session",
           "create_run", "join_run", "average"]


def _config(nodes, rounds, inner_steps, aggregator, reputation, k, alpha, beta, seed, staleness):
    return dict(dataset="external:torch", model="external:torch", aggregator=aggregator, inner_steps=inner_steps, alpha=alpha, beta=beta,
                k=k, rounds=rounds, seed=seed, split="iid", nodes=nodes, reputation=reputation, staleness=staleness)


def create_run(name, nodes, shard=0, rounds=100, inner_steps=10, aggregator="centered-clip", reputation=True, k=8,
               alpha=0.7, beta=0.7, seed=1, staleness=2, socket=None, data_dir=None):
    """Creates run ``name`` on the local daemon (``train.start`` without the built-in trainer)
    for ``nodes`` members, this one on shard ``shard``; returns the run id
    (``<peer id>.<name>``). The daemon's RunConfig carries dataset/model fields for its own
    trainer; an external trainer brings its own data and model: the run says `external:torch`,
    so the daemon never starts its built-in trainer for it."""
    with ControlClient(default_socket(data_dir, socket), timeout=30) as c:
        cfg = _config(nodes, rounds, inner_steps, aggregator, reputation, k, alpha, beta, seed, staleness)
        return c.call("train.start", name=name, config=cfg, shard=f"{shard}/{nodes}", spawn=False)["run"]


def join_run(run, shard, nodes, socket=None, data_dir=None, timeout=60.0):
    """Joins run ``run`` on shard ``shard``/``nodes`` (``train.join`` without the built-in
    trainer), waiting up to ``timeout`` s for the run's config to replicate here."""
    import time
    deadline = time.monotonic() + timeout
    with ControlClient(default_socket(data_dir, socket), timeout=30) as c:
        while True:
            try:
                return c.call("train.join", run=run, shard=f"{shard}/{nodes}", spawn=False)["run"]
            except UnknownRun:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)


def average(params, run, socket=None, data_dir=None, _sessions={}):
    """``average(params, run) -> params``: one blocking outer step of ``run`` with a numpy array
    (any float array of the run's size), for JAX or anything else. The first call attaches and
    hands ``params`` as θ0 (returning the run's agreed starting point); keep a
    :class:`Session` yourself for control over its lifetime."""
    import numpy as np
    key = (run, default_socket(data_dir, socket))
    s = _sessions.get(key)
    if s is None:
        s = Session(run, socket=socket, data_dir=data_dir)
        _sessions[key] = s
        return s.start(np.asarray(params, dtype=np.float32).reshape(-1)).reshape(np.shape(params))
    return s.average(params).reshape(np.shape(params))
