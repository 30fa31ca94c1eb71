#!/usr/bin/env python3
"""Drive the interop peers over their JSON line protocol (library + tiny CLI).

    from peerctl import PeerProc
    with PeerProc("lattica") as a, PeerProc("lattica", "--bootstrap", addr) as b:
        b.call({"cmd": "ping", "peer": a.peer_id, "count": 3})

PeerProc kills its child on close, on exceptions and at interpreter exit.
"""
import atexit
import json
import os
import select
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
SCRIPTS = {"lattica": "lattica_peer.py", "pylibp2p": "pylibp2p_peer.py"}
_live = set()


def python():
    venv = os.path.join(REPO, ".venv", "bin", "python")
    if os.path.exists(venv):
        return venv
    return os.environ.get("INTEROP_PYTHON", "/work/main/.venv/bin/python")


@atexit.register
def _kill_all():
    for p in list(_live):
        p.close()


class PeerProc:
    def __init__(self, kind, *args, timeout=60, stderr=None):
        cmd = [python(), "-u", os.path.join(HERE, SCRIPTS[kind]), *args]
        self.kind = kind
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=stderr if stderr is not None else sys.stderr,
                                     text=True, bufsize=1)
        _live.add(self)
        try:
            self.ready = self._read(timeout)
        except Exception:
            self.close()
            raise
        if self.ready.get("event") != "ready":
            self.close()
            raise RuntimeError(f"{kind}: expected ready, got {self.ready}")
        self.peer_id = self.ready["peer_id"]
        self.addr = self.ready["listen_addrs"][0]

    @property
    def pid(self):
        return self.proc.pid

    def _read(self, timeout):
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"{self.kind}: no answer within {timeout}s")
            r, _, _ = select.select([self.proc.stdout], [], [], left)
            if r:
                line = self.proc.stdout.readline()
                if not line:
                    raise EOFError(f"{self.kind}: peer exited (rc={self.proc.poll()})")
                line = line.strip()
                if line.startswith("{"):
                    return json.loads(line)

    def call(self, cmd, timeout=120):
        """Send a command (dict, or a raw line) and return the peer's JSON answer."""
        line = cmd if isinstance(cmd, str) else json.dumps(cmd)
        self.proc.stdin.write(line.strip() + "\n")
        self.proc.stdin.flush()
        return self._read(timeout)

    def close(self):
        if self not in _live:
            return
        _live.discard(self)
        if self.proc.poll() is None:
            try:
                self.proc.stdin.write('{"cmd":"quit"}\n')
                self.proc.stdin.flush()
                self.proc.wait(timeout=5)
            except Exception:
                pass
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


if __name__ == "__main__":
    # peerctl.py KIND [peer args...]  -- relays stdin commands to one peer, prints answers.
    p = PeerProc(sys.argv[1], *sys.argv[2:])
    print(json.dumps(p.ready), flush=True)
    try:
        for line in sys.stdin:
            if line.strip():
                print(json.dumps(p.call(line)), flush=True)
    finally:
        p.close()
