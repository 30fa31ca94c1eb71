import subprocess
import sys

CHILD = r'''
import os, sys, time, numpy as np
from latticaswift import Session
run, sock, mode = sys.argv[1], sys.argv[2], sys.argv[3]
s = Session(run, socket=sock, share_theta0=False)
s.start(np.zeros(int(sys.argv[4]), dtype=np.float32))
print("attached", flush=True)
if mode == "hold":
    sys.stdin.read()  # hold the slot until the test closes stdin
elif mode == "step":
    # the request written to the socket by hand, so that "sent" means the daemon has it
    import json
    buf = s._bufs[0]
    buf.array[:] = 1.0
    line = json.dumps({"v": 1, "id": 99, "method": "trainer.outer_step",
                       "params": {"run": run, "step": s.step, "shm": buf.path, "count": s.count}}) + "\n"
    s._ctl._sock.sendall(line.encode())
    print("sent", flush=True)
    s._ctl._sock.recv(1 << 16)
    print("answered", flush=True)
    sys.stdin.read()
'''


def child_trainer(run, socket, mode, count):
    """A trainer in another process (its own pid), reporting on stdout as it goes."""
    return subprocess.Popen([sys.executable, "-c", CHILD, run, socket, mode, str(count)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def expect_line(proc, want):
    line = proc.stdout.readline().strip()
    if line != want:
        proc.kill()
        _, err = proc.communicate()
        raise AssertionError(f"child said {line!r}, expected {want!r}; stderr: {err[-2000:]}")
