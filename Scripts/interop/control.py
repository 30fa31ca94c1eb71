"""latticad's control API from Python: one JSON-lines connection to a daemon's Unix socket
(Docs/OPERATIONS.md). Used by the scenario scripts (Scripts/crdt/, Scripts/interop/)."""
import json
import socket
import subprocess


class Control:
    """One JSON-lines connection to a daemon's control socket."""

    def __init__(self, path, timeout=10):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.settimeout(timeout)
        self.s.connect(path)
        self.f = self.s.makefile("rb")
        self.id = 0

    def call(self, method, **params):
        self.id += 1
        self.s.sendall((json.dumps({"v": 1, "id": self.id, "method": method, "params": params}) + "\n").encode())
        line = self.f.readline()
        if not line:
            raise EOFError("daemon closed the control socket")
        r = json.loads(line)
        if not r.get("ok"):
            raise RuntimeError(f"{method}: {r.get('error')}")
        return r["result"]

    def close(self):
        try:
            self.s.close()
        except OSError:
            pass


def stop_process(proc, grace=5):
    """SIGTERM, then SIGKILL after `grace` seconds (a daemon that does not stop in time)."""
    if proc and proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
