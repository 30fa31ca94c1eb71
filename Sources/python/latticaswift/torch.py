"""``latticaswift.torch.Optimizer``: wraps the user's torch optimizer. The inner optimizer steps
locally; every ``inner_steps`` steps the wrapper hands the parameters to the local latticad,
which runs the robust outer step with peers and hands back the new parameters.

With ``overlap=True`` (the default) the hand-off does not wait for the network: θ_t is copied
into shared memory and training goes on from θ_t; the daemon's answer φ_{t+1} is applied at the
next boundary as ``params += φ_{t+1} − θ_t`` (the local progress made meanwhile is kept: the
one-step-delayed outer update). If the answer is not there yet at that boundary, training goes on
again (``staleness`` grows) until ``max_staleness`` boundaries (default 1: wait at the next
boundary, so that every outer step of the run is taken), and only then waits."""

import time

import numpy as np
import torch

from .errors import LatticaError
from .session import Session


def _flat_params(params):
    out = []
    for p in params:
        if isinstance(p, dict):
            out.extend(p["params"])
        else:
            out.append(p)
    return out


class Optimizer:
    """``Optimizer(params, inner, run=RUN_ID, ...)``.

    ``params``: the model's parameters (as given to the inner optimizer); ``inner``: any
    ``torch.optim.Optimizer`` over them. ``run``: the run id (the daemon must be in it:
    :func:`latticaswift.create_run` / :func:`latticaswift.join_run`). ``aggregator``,
    ``reputation``, ``k``, ``alpha``, ``beta``, ``inner_steps``: the run's options; when given they
    are checked against the run's config (they are fixed when the run is created). ``overlap``:
    average in the background (above). ``zero_copy`` (default: when ``overlap=False`` and the
    parameters are on the CPU): the parameters live in the shared buffer, so that a blocking
    outer step copies nothing in Python. ``on_event``: callable for every event (also
    ``events()``). ``socket``/``data_dir``: the daemon."""

    OPTION_KEYS = ("aggregator", "reputation", "k", "alpha", "beta", "inner_steps")

    def __init__(self, params, inner, run, socket=None, data_dir=None, overlap=True, max_staleness=1, on_event=None,
                 share_theta0=True, zero_copy=None, aggregator=None, reputation=None, k=None, alpha=None, beta=None,
                 inner_steps=None):
        self.inner = inner
        self.params = _flat_params(list(params))
        for p in self.params:
            if p.dtype != torch.float32:
                raise TypeError(f"latticaswift hands float32 parameters to the daemon; a parameter is {p.dtype}")
        self.sizes = [p.numel() for p in self.params]
        self.count = sum(self.sizes)
        self.overlap = overlap
        self.max_staleness = max(1, int(max_staleness))
        self.session = Session(run, socket=socket, data_dir=data_dir, share_theta0=share_theta0, on_event=on_event)
        try:
            asked = dict(aggregator=aggregator, reputation=reputation, k=k, alpha=alpha, beta=beta, inner_steps=inner_steps)
            for key, v in asked.items():
                if v is not None and self.session.config[key] != v:
                    raise LatticaError(f"run '{run}' has {key} = {self.session.config[key]!r}; asked for {v!r} "
                                       f"(a run's options are fixed when it is created)")
            self.inner_steps = self.session.inner_steps
            theta = self.session.start(self._gather_numpy())
            if zero_copy is None:  # blocking, and every parameter a CPU tensor: they can live in shared memory
                zero_copy = not overlap and all(p.device.type == "cpu" for p in self.params)
            if zero_copy and overlap:
                raise ValueError("zero_copy needs overlap=False: with overlap the daemon would write into the parameters mid-step")
            self.zero_copy = bool(zero_copy)
            if self.zero_copy:
                self._bind_to_shared()
            else:
                self._scatter(torch.from_numpy(theta), add=False)
        except BaseException:
            self.session.close()
            raise
        self.local_steps = 0
        self._loss_sum = 0.0
        self._loss_n = 0
        self._accuracy = None
        self.handoff_ms = []  # per boundary: the training thread's time in the hand-off

    # -- torch.optim.Optimizer look-alike --
    @property
    def param_groups(self):
        return self.inner.param_groups

    def zero_grad(self, set_to_none=True):
        self.inner.zero_grad(set_to_none=set_to_none)

    def state_dict(self):
        return self.inner.state_dict()

    def load_state_dict(self, s):
        self.inner.load_state_dict(s)

    @property
    def run(self):
        return self.session.run

    @property
    def config(self):
        return self.session.config

    @property
    def attack(self):
        return self.session.attack

    @property
    def finished(self):
        return self.session.finished and self.session.pending is None

    def events(self, timeout=None):
        return self.session.events(timeout)

    def status(self):
        return self.session.status()

    def report_accuracy(self, accuracy):
        """A held-out accuracy of the current parameters, sent with the next outer step."""
        self._accuracy = float(accuracy)

    # -- copying --
    @torch.no_grad()
    def _bind_to_shared(self):
        """Zero-copy: every parameter's storage becomes a view of shared buffer 0 (which holds the
        starting point): the daemon reads θ and writes the new θ in place."""
        view = torch.from_numpy(self.session.buffer_array(0))
        o = 0
        for p, n in zip(self.params, self.sizes):
            p.data = view[o:o + n].view_as(p)
            o += n

    @torch.no_grad()
    def _unbind_from_shared(self):
        if getattr(self, "zero_copy", False):
            for p in self.params:
                p.data = p.data.clone()
            self.zero_copy = False

    @torch.no_grad()
    def _gather_into(self, arr):
        view = torch.from_numpy(arr)
        o = 0
        for p, n in zip(self.params, self.sizes):
            view[o:o + n].copy_(p.detach().reshape(-1))
            o += n

    def _gather_numpy(self):
        a = np.empty(self.count, dtype="<f4")
        self._gather_into(a)
        return a

    @torch.no_grad()
    def _scatter(self, flat, add):
        o = 0
        for p, n in zip(self.params, self.sizes):
            src = flat[o:o + n].view_as(p)
            if src.device != p.device:
                src = src.to(p.device, non_blocking=False)
            if add:
                p.add_(src)
            else:
                p.copy_(src)
            o += n

    # -- the step --
    def step(self, closure=None, loss=None):
        """One inner step (``inner.step(closure)``); at every ``inner_steps``-th, the outer step.
        ``loss``: this step's loss (a float or tensor), averaged into the loss reported."""
        out = self.inner.step(closure) if closure is not None else self.inner.step()
        lv = loss if loss is not None else out
        if lv is not None:
            self._loss_sum += float(lv.detach()) if torch.is_tensor(lv) else float(lv)
            self._loss_n += 1
        self.local_steps += 1
        if self.local_steps % self.inner_steps == 0:
            self._boundary()
        return out

    def _boundary(self):
        s = self.session
        t0 = time.perf_counter()
        p = s.pending
        if p is not None:
            p.boundaries += 1
            if not p.done() and p.boundaries <= self.max_staleness - 1:
                return  # keep training; apply at a later boundary
            p.result()  # raises the daemon's error, if any
            self._scatter(torch.from_numpy(p.snapshot), add=True)  # params += φ_new − θ_sent
            p.snapshot = None
            s.apply(p, handoff_ms=1000 * (time.perf_counter() - t0))
            t0 = time.perf_counter()
        if s.finished:
            return
        loss = self._loss_sum / self._loss_n if self._loss_n else None
        self._loss_sum, self._loss_n = 0.0, 0
        acc, self._accuracy = self._accuracy, None
        if self.overlap:
            s.average_async(None, loss=loss, accuracy=acc, snapshot=True, write=self._gather_into)
            self.handoff_ms.append(1000 * (time.perf_counter() - t0))
        elif self.zero_copy:
            q = s.average_async(None, loss=loss, accuracy=acc, buffer=0)
            q.result()
            t1 = time.perf_counter()  # the new θ is in the parameters already
            h = 1000 * ((t1 - t0) - (q.answered_at - q.sent_at))
            s.apply(q, handoff_ms=h)
            self.handoff_ms.append(h)
        else:
            q = s.average_async(None, loss=loss, accuracy=acc, write=self._gather_into)
            q.result()
            t1 = time.perf_counter()
            self._scatter(torch.from_numpy(q.buf.array), add=False)
            h = 1000 * ((time.perf_counter() - t1) + (t1 - t0) - (q.answered_at - q.sent_at))
            s.apply(q, handoff_ms=h)
            self.handoff_ms.append(h)

    def flush(self):
        """Waits for the outer step in flight, if any, and applies it."""
        p = self.session.pending
        if p is not None:
            p.result()
            if p.snapshot is not None:
                self._scatter(torch.from_numpy(p.snapshot), add=True)
                p.snapshot = None
            self.session.apply(p)

    def finish(self, accuracy=None):
        """Applies the last outer step and tells the daemon the trainer is done; returns the
        run's status. The parameters are the final ones afterwards."""
        self.flush()
        try:
            return self.session.done(accuracy)
        finally:
            self.close()

    def close(self):
        """Ends the session (the parameters move out of shared memory in zero-copy mode)."""
        self._unbind_from_shared()
        self.session.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
