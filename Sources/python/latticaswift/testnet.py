"""Local networks of latticad daemons on loopback, for tests, the example, benchmarks and the
soak: each daemon has its own data directory; they bootstrap from the first one. Binaries come
from ``$LATTICA_BIN_DIR`` (as the Swift tests), else the checkout's ``.build/release``."""

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time

from .control import ControlClient
from .errors import DaemonNotFound, LatticaError


def bin_dir():
    d = os.environ.get("LATTICA_BIN_DIR")
    if d:
        return d
    here = os.path.dirname(os.path.abspath(__file__))
    ups = [os.path.join(here, "..", "..", "..")]  # Sources/python/latticaswift -> the checkout (an editable install)
    d = os.getcwd()
    while True:  # the checkout holding the working directory
        ups.append(d)
        if os.path.dirname(d) == d:
            break
        d = os.path.dirname(d)
    for up in ups:
        cand = os.path.normpath(os.path.join(up, ".build", "release"))
        if os.path.exists(os.path.join(cand, "latticad")):
            return cand
    return os.path.normpath(os.path.join(os.getcwd(), ".build", "release"))


@contextlib.contextmanager
def ignoring_sigterm():
    """latticad SIGTERMs the pid its trainer attached with when it stops or leaves the run (a
    behaviour meant for the trainer it spawned): around ``train.stop`` or a daemon's stop, when
    that trainer is this very process (tests, notebooks), ignore the signal."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


class Daemon:
    """One latticad process with its data directory."""

    def __init__(self, data_dir, attack=None, bootstrap=None, log_level="warning", extra_config=""):
        self.data_dir = data_dir
        os.makedirs(data_dir, exist_ok=True)
        self.socket = os.path.join(data_dir, "control.sock")
        exe = os.path.join(bin_dir(), "latticad")
        if not os.path.exists(exe):
            raise FileNotFoundError(f"latticad not found at {exe} (set LATTICA_BIN_DIR)")
        args = [exe, "--data-dir", data_dir, "--listen", "/ip4/127.0.0.1/tcp/0", "--metrics-addr", "", "--log-level", log_level]
        cfg = ""
        if attack and attack != "none":
            cfg += f'[train]\nattack = "{attack}"\n'
        cfg += extra_config
        if cfg:
            path = os.path.join(data_dir, "latticad.toml")
            with open(path, "w") as f:
                f.write(cfg)
            args += ["--config", path]
        if bootstrap:
            args += ["--bootstrap", bootstrap]
        self.log_path = os.path.join(data_dir, "latticad.log")
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(args, stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        self.pid = self.proc.pid
        self.status = self._wait_ready()
        self.peer_id = self.status["peer_id"]
        self.addr = self.status["listen_addrs"][0]

    def _wait_ready(self, timeout=20):
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"latticad in {self.data_dir} exited with {self.proc.returncode}: {self.log_tail()}")
            try:
                with ControlClient(self.socket, timeout=5) as c:
                    return c.call("status")
            except DaemonNotFound:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"latticad in {self.data_dir} did not become ready: {self.log_tail()}")
                time.sleep(0.02)

    def call(self, method, timeout=30, **params):
        with ControlClient(self.socket, timeout=timeout) as c:
            return c.call(method, **params)

    def log_tail(self, n=20):
        try:
            with open(self.log_path, "rb") as f:
                return b"".join(f.readlines()[-n:]).decode(errors="replace")
        except OSError:
            return ""

    def alive(self):
        return self.proc.poll() is None

    def stop(self, timeout=5):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        return self.proc.returncode


class TestNet:
    """``n`` daemons on loopback, connected to each other. Use as a context manager: the daemons
    are stopped (and the temporary root removed unless ``keep``) also when the body raises."""

    __test__ = False  # not a pytest class

    def __init__(self, n, attackers=(), attack="sign-flip", root=None, keep=False, log_level="warning"):
        self.own_root = root is None
        self.root = root or tempfile.mkdtemp(prefix="latticaswift-net-")
        self.keep = keep
        self.daemons = []
        try:
            for i in range(n):
                boot = self.daemons[0].addr if self.daemons else None
                self.daemons.append(Daemon(os.path.join(self.root, f"node-{i}"), attack=attack if i in attackers else None,
                                           bootstrap=boot, log_level=log_level))
            self.wait_connected()
        except BaseException:
            self.close()
            raise

    def wait_connected(self, timeout=30):
        """Until every daemon is connected to all the others (dialling them itself if needed)."""
        n = len(self.daemons)
        deadline = time.monotonic() + timeout
        for d in self.daemons:
            for o in self.daemons:
                if o is not d:
                    try:
                        d.call("connect", addr=o.addr)
                    except LatticaError:
                        pass
        while True:
            counts = [d.call("status")["connected_peers"] for d in self.daemons]
            if all(c >= n - 1 for c in counts):
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"daemons not connected after {timeout} s: connected_peers {counts}")
            time.sleep(0.05)

    def start_run(self, name, config, spawn=False):
        """Daemon 0 creates the run (shard 0/n); the others join it once its config replicated.
        Returns the run id."""
        n = len(self.daemons)
        r = self.daemons[0].call("train.start", name=name, config=config, shard=f"0/{n}", spawn=spawn)
        run = r["run"]
        for i, d in enumerate(self.daemons[1:], start=1):
            deadline = time.monotonic() + 30
            while True:
                try:
                    d.call("train.join", run=run, shard=f"{i}/{n}", spawn=spawn)
                    break
                except LatticaError as e:
                    if e.code != "not_found" or time.monotonic() > deadline:
                        raise
                    time.sleep(0.05)  # the config has not replicated here yet
        return run

    def pids(self):
        return [d.pid for d in self.daemons]

    def close(self):
        with ignoring_sigterm():
            for d in self.daemons:
                try:
                    d.stop()
                except Exception:
                    pass
        if self.own_root and not self.keep:
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def run_config(**kw):
    """A RunConfig dict with every field (the daemon requires all), defaults as the CLI's."""
    c = dict(dataset="external:torch", model="external:torch", aggregator="centered-clip", inner_steps=10, alpha=0.7, beta=0.7, k=8,
             rounds=60, seed=1, split="iid", nodes=1, reputation=True, staleness=2)
    c.update(kw)
    return c
