"""A trainer session with the local latticad (Docs/PYTHON.md): attach to a run, agree on θ0 with
the other members, then hand θ over at every outer step, blocking (``average``) or in the
background (``average_async``). Tensors go through two shared-memory buffers, used in turn, never
through JSON; commands go over the control socket."""

import os
import queue
import threading
import time

import numpy as np

from . import events as ev
from .control import TRAINER_API_VERSION, ControlClient, default_socket
from .errors import BadRequest, DaemonGone, LatticaError, RunFinished, ShapeMismatch, StepInProgress, UnknownRun
from .shm import SharedBuffer, sweep_stale

THETA0_KEY = "kv/latticaswift/{run}/theta0"


class Pending:
    """An outer step handed to the daemon in the background. ``done()`` does not block;
    ``result()`` waits and returns the new θ (a view of the shared buffer, valid until the buffer
    after next is handed over) and raises what the daemon raised."""

    def __init__(self, session, step, buf, loss, want_snapshot):
        self.session, self.step, self.buf, self.loss = session, step, buf, loss
        self.want_snapshot = want_snapshot
        self.snapshot = None  # private copy of the sent θ, turned into φ_new − θ_sent (the correction)
        self.answer = None
        self.error = None
        self.sent_at = time.monotonic()
        self.answered_at = None
        self.boundaries = 0
        self._done = threading.Event()

    def done(self):
        return self._done.is_set()

    def wait(self, timeout=None):
        return self._done.wait(timeout)

    def result(self):
        self.session._wait(self)
        if self.error is not None:
            raise self.error
        return self.buf.array


class Session:
    """One trainer's attachment to a run of the local daemon.

    ``run``: the run id (``<creator peer id>.<name>``). ``socket``/``data_dir``: where the daemon
    is (default ``$LATTICA_DATA_DIR`` or ``~/.lattica``). ``share_theta0``: member 0 (shard
    ``0/n``) publishes its θ0 and the others fetch it, so that everyone starts from the same point
    whatever their seed; ``False``: each member hands its own θ0 (seed identically yourself).
    ``on_event``: a callable given every event, in the thread that called the session."""

    MAX_QUEUED_EVENTS = 1024  # unread events beyond this are dropped, oldest first

    def __init__(self, run, socket=None, data_dir=None, share_theta0=True, on_event=None, pid=None,
                 api_version=TRAINER_API_VERSION, theta0_timeout=120.0, orphan_wait=45.0):
        self.run = run
        self.socket_path = default_socket(data_dir, socket)
        self.share_theta0 = share_theta0
        self.on_event = on_event
        self.theta0_timeout = theta0_timeout
        self.orphan_wait = orphan_wait
        self._events = queue.Queue(maxsize=self.MAX_QUEUED_EVENTS)
        self._ctl = ControlClient(self.socket_path, timeout=60)
        a = self._ctl.call("trainer.attach", run=run, api_version=api_version, pid=pid or os.getpid())
        self.info = a
        self.config = a["config"]
        self.shard = a["shard"]
        self.shard_index, self.shard_count = (int(x) for x in self.shard.split("/"))
        self.step = int(a["step"])
        self.rounds = int(self.config["rounds"])
        self.inner_steps = int(self.config["inner_steps"])
        self.attack = a.get("attack", "none")
        self.checkpoint = a.get("checkpoint")
        self.count = None
        self._bufs = []
        self._next_buf = 0
        self._pending = None
        self._worker = None
        self._jobs = queue.Queue()
        self._last_bytes = (0, 0)
        self._last_rejected = 0
        self._walls = []
        self._snap = None
        self._closed = False
        self._emit(ev.Attached(run=run, shard=self.shard, step=self.step, rounds=self.rounds, config=self.config,
                               attack=self.attack, resumed=self.step > 0 and self.checkpoint is not None))

    # ---- events -------------------------------------------------------------------------------

    def _emit(self, e):
        while True:
            try:
                self._events.put_nowait(e)
                break
            except queue.Full:  # nobody reads the iterator (a callback user, say): keep the newest
                try:
                    self._events.get_nowait()
                except queue.Empty:
                    pass
        if self.on_event is not None:
            self.on_event(e)

    def events(self, timeout=None):
        """Iterate over the events so far, then wait for more (up to ``timeout`` s per event;
        None: forever). Ends after ``Finished`` or ``Failed``."""
        while True:
            try:
                e = self._events.get(timeout=timeout)
            except queue.Empty:
                return
            yield e
            if isinstance(e, (ev.Finished, ev.Failed)):
                return

    def drain_events(self):
        """The events that arrived so far, without waiting."""
        out = []
        while True:
            try:
                out.append(self._events.get_nowait())
            except queue.Empty:
                return out

    def status(self):
        """This daemon's ``train.status`` of the run (step, partners, bytes, rejected, peers'
        reputation), as a dict."""
        with ControlClient(self.socket_path, timeout=30) as c:
            runs = c.call("train.status").get("runs", [])
        for r in runs:
            if r["run"] == self.run:
                return r
        raise UnknownRun(f"train.status: this daemon is not in run '{self.run}' any more", code="not_found")

    @property
    def finished(self):
        return self.step >= self.rounds

    # ---- start ------------------------------------------------------------------------------------

    def start(self, theta0):
        """Hand over the starting point. ``theta0``: this member's initial parameters (float32,
        flat). Returns the parameters to train from: the checkpoint when resuming, member 0's
        published θ0 when sharing, else ``theta0``. Raises ShapeMismatch when the model does not
        have the run's size."""
        theta0 = np.ascontiguousarray(theta0, dtype="<f4").reshape(-1)
        self.count = theta0.size
        start = theta0
        source = "local"
        digest = None
        if self.checkpoint and self.step > 0:
            data = np.fromfile(self.checkpoint, dtype="<f4")
            if data.size != self.count:
                raise ShapeMismatch(f"the run's checkpoint {self.checkpoint} has {data.size} parameters; this model has {self.count}",
                                    expected=data.size, got=self.count)
            start, source = data, "checkpoint"
        elif self.share_theta0:
            start, source, digest = self._agree_theta0(theta0)
        sweep_stale()
        memfd = os.environ.get("LATTICASWIFT_SHM", "memfd") != "file"
        self._bufs = self._make_buffers(memfd)
        buf = self._bufs[0]
        buf.array[:] = start
        try:
            self._call_step(self._ctl, step=self.step, shm=buf.path, count=self.count, initial=True)
        except BadRequest as e:
            if not (buf.sealed and "/dev/shm/" in str(e)):
                raise
            # a daemon before memfd hand-offs: files under /dev/shm, read and written with pread/pwrite
            for b in self._bufs:
                b.close()
            self._bufs = self._make_buffers(False)
            buf = self._bufs[0]
            buf.array[:] = start
            self._call_step(self._ctl, step=self.step, shm=buf.path, count=self.count, initial=True)
        self._emit(ev.Started(step=self.step, count=self.count, source=source, model_id=digest))
        return np.array(buf.array)

    def _make_buffers(self, memfd):
        """The two shared buffers (double buffering): sealed memfds, or files under /dev/shm."""
        return [SharedBuffer(self.count, f"latticaswift-{os.getpid()}-{id(self) & 0xffffff:x}-{i}", memfd=memfd) for i in range(2)]

    def _agree_theta0(self, theta0):
        key = THETA0_KEY.format(run=self.run)
        c = self._ctl
        if self.shard_index == 0:
            path = f"/dev/shm/latticaswift-{os.getpid()}-theta0"
            theta0.tofile(path)
            os.chmod(path, 0o600)
            try:
                h = c.call("model.push", path=path)["hash"]
            finally:
                os.unlink(path)
            c.call("meta.set", path=key, value=f"{h} {self.count}")
            return theta0, "published", h
        deadline = time.monotonic() + self.theta0_timeout
        while True:  # the CRDT store replicates member 0's entry; there is no event for it
            r = c.call("meta.get", path=key)
            if r.get("value"):
                break
            if time.monotonic() > deadline:
                raise LatticaError(f"member 0 of run '{self.run}' published no θ0 at {key} within {self.theta0_timeout} s "
                                   f"(is its trainer running? or pass share_theta0=False and seed identically)")
            time.sleep(0.1)
        h, n = r["value"].split()
        n = int(n)
        if n != self.count:
            raise ShapeMismatch(f"this model has {self.count} parameters; the run's model (θ0 published by member 0) has {n}",
                                expected=n, got=self.count)
        c.call("model.pull", hash=h, peer=r.get("author"), timeout=120)
        path = f"/dev/shm/latticaswift-{os.getpid()}-theta0-in"
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        c.call("model.export", hash=h, path=path)
        try:
            data = np.fromfile(path, dtype="<f4")
        finally:
            os.unlink(path)
        if data.size != n:  # the blob itself is checked by the daemon against the manifest that `h` names
            raise ShapeMismatch(f"θ0 {h} has {data.size} parameters; expected {n}", expected=n, got=data.size)
        return data, "fetched", h

    # ---- outer steps ----------------------------------------------------------------------------

    def _call_step(self, client, **params):
        # This session never has two steps in flight, so "already in progress" is the step of a
        # trainer that held the slot before and died mid-step. Such a step may still end (the
        # daemon's round deadline is at most 30 s): wait for it up to `orphan_wait` s, then say
        # what happened and how to clear it.
        deadline = time.monotonic() + self.orphan_wait
        while True:
            try:
                return client.call("trainer.outer_step", run=self.run, **params)
            except ShapeMismatch as e:
                e.got = params.get("count")
                raise
            except BadRequest as e:
                if "already in progress" not in str(e):
                    raise
                if time.monotonic() > deadline:
                    raise StepInProgress(
                        f"trainer.outer_step: latticad at {self.socket_path} still has an outer step of run '{self.run}' in "
                        f"progress that this session did not send (a trainer that held the slot died mid-step, and this "
                        f"latticad did not end its step: releases before 0.1.1 do not notice an external trainer's death); clear it with `lattica train stop {self.run}` and "
                        f"`lattica train join {self.run} --shard {self.shard}`, or restart latticad",
                        code="bad_request", method="trainer.outer_step") from None
                time.sleep(0.2)

    def _check(self, params):
        if self.count is None:
            raise LatticaError("call start(theta0) before the first outer step")
        if self.finished:
            raise RunFinished(f"run '{self.run}' is over: {self.rounds} rounds done")
        a = np.asarray(params)
        if a.size != self.count:
            raise ShapeMismatch(f"{a.size} parameters handed over; the run's model has {self.count}", expected=self.count, got=a.size)

    def average(self, params, loss=None, accuracy=None):
        """Blocking outer step: hands ``params`` (any array of the run's size) to the daemon and
        returns the new parameters (a float32 copy)."""
        p = self.average_async(params, loss=loss, accuracy=accuracy)
        out = np.array(p.result())
        self.apply(p)
        return out

    def average_async(self, params, loss=None, accuracy=None, snapshot=False, write=None, buffer=None):
        """Hands ``params`` to the daemon in the background and returns a :class:`Pending` at
        once. Only one outer step is in flight at a time (the daemon's rule): call ``apply`` on
        the previous one first. ``write``: a callable that fills the shared buffer itself (the
        torch wrapper gathers its tensors straight into it); ``snapshot``: keep a copy of θ sent
        so that the result can be turned into a correction (``pending.snapshot``); ``buffer``: 0
        or 1, hand over that buffer as it is (the torch wrapper's zero-copy mode keeps the
        parameters in buffer 0)."""
        if self._pending is not None:
            raise LatticaError("an outer step is still in flight: apply() it before handing over the next")
        if write is None and params is not None:
            self._check(params)
        elif self.finished:
            raise RunFinished(f"run '{self.run}' is over: {self.rounds} rounds done")
        if buffer is not None:
            buf = self._bufs[buffer]
        else:
            buf = self._bufs[self._next_buf]
            self._next_buf ^= 1  # double buffering: the other buffer still holds the last answer
        if buffer is not None and params is None and write is None:
            pass  # θ is in the buffer already
        elif write is None:
            np.copyto(buf.array, np.asarray(params, dtype="<f4").reshape(-1))
        else:
            write(buf.array)
        p = Pending(self, self.step, buf, loss, snapshot)
        self._pending = p
        self._ensure_worker()
        self._jobs.put((p, accuracy))
        return p

    def _ensure_worker(self):
        if self._worker is None:
            self._worker_ctl = ControlClient(self.socket_path, timeout=None)
            self._worker = threading.Thread(target=self._work, name="latticaswift-outer-step", daemon=True)
            self._worker.start()

    def _work(self):
        while True:
            job = self._jobs.get()
            if job is None:
                return
            p, accuracy = job
            try:
                if p.want_snapshot:
                    if self._snap is None:  # one private array, reused: a fresh 100 MB each step would page-fault
                        self._snap = np.empty(self.count, dtype="<f4")
                    np.copyto(self._snap, p.buf.array)
                    p.snapshot = self._snap
                p.sent_at = time.monotonic()
                p.answer = self._call_step(self._worker_ctl, step=p.step, shm=p.buf.path, count=self.count,
                                           loss=p.loss if p.loss is not None and np.isfinite(p.loss) else None,
                                           accuracy=accuracy)
                if p.snapshot is not None:
                    np.subtract(p.buf.array, p.snapshot, out=p.snapshot)  # φ_new − θ_sent
            except BaseException as e:  # handed to the training thread by result()
                p.error = e
            p.answered_at = time.monotonic()
            p._done.set()

    def _deadline(self):
        """How long the training thread waits for an answer before it calls the daemon stuck: no
        user-set timeout; 10× the slowest answer seen, at least 120 s (the daemon's own round
        deadline adapts within 0.3...30 s, and the first step waits up to 30 s for members)."""
        return max(120.0, 10 * max(self._walls)) if self._walls else 300.0

    def _wait(self, p):
        limit = self._deadline()
        while not p.wait(1.0):
            if self._worker is not None and not self._worker.is_alive():
                raise DaemonGone("the outer-step thread died")
            if time.monotonic() - p.sent_at > limit:
                raise DaemonGone(f"latticad at {self.socket_path} did not answer outer step {p.step} within {limit:.0f} s")

    def apply(self, p, handoff_ms=0.0):
        """Marks ``p`` as applied: advances the step and emits its OuterStep event. Returns it."""
        self._wait(p)
        self._pending = None
        if p.error is not None:
            raise p.error
        a = p.answer
        wall = 1000 * (p.answered_at - p.sent_at)
        self._walls.append(wall / 1000)
        self._walls = self._walls[-50:]
        bi, bo = a.get("bytes_in", 0), a.get("bytes_out", 0)
        rej = a.get("rejected", 0)
        e = ev.OuterStep(step=a["step"], sent_step=p.step, partners=list(a.get("partners", [])), rejected=rej,
                         rejected_new=max(0, rej - self._last_rejected), bytes_in=bi, bytes_out=bo,
                         bytes_in_total=self._last_bytes[0] + bi, bytes_out_total=self._last_bytes[1] + bo,
                         daemon_ms=float(a.get("ms", 0.0)), wall_ms=wall, handoff_ms=handoff_ms, staleness=p.boundaries,
                         loss=p.loss, caught_up=a["step"] > p.step)
        self._last_bytes = (self._last_bytes[0] + bi, self._last_bytes[1] + bo)
        self._last_rejected = rej
        self.step = max(self.step, int(a["step"])) + 1
        self._emit(e)
        return e

    def buffer_array(self, i):
        """The numpy view of shared buffer ``i`` (0 or 1), after ``start``."""
        return self._bufs[i].array

    @property
    def pending(self):
        return self._pending

    # ---- end --------------------------------------------------------------------------------------

    def done(self, accuracy=None):
        """Tells the daemon the trainer is done (final held-out accuracy); returns the run's status."""
        if self._pending is not None:
            try:
                self.apply(self._pending)
            except LatticaError:
                pass
        st = self._ctl.call("trainer.done", run=self.run, accuracy=accuracy)
        runs = [r for r in st.get("runs", []) if r["run"] == self.run]
        status = runs[0] if runs else {}
        self._emit(ev.Finished(step=self.step, accuracy=accuracy, status=status))
        return status

    def close(self):
        if self._closed:
            return
        self._closed = True
        if self._worker is not None:
            self._jobs.put(None)
            self._worker.join(timeout=5)
            self._worker_ctl.close()
        self._ctl.close()
        for b in self._bufs:
            b.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
