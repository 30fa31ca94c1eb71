"""The daemon's control socket: newline-delimited JSON on a Unix stream socket (Docs/OPERATIONS.md).
One connection answers requests in order; use one ControlClient per thread."""

import itertools
import json
import os
import socket

from .errors import DaemonGone, DaemonNotFound, from_error_body

API_VERSION = 1  # the control protocol's "v"
TRAINER_API_VERSION = 1  # trainer.attach's api_version (TrainerAPI.version in LatticaAPI)


def default_socket(data_dir=None, socket_path=None):
    """The control socket: ``socket_path``, else ``<data_dir>/control.sock``, else
    ``$LATTICA_DATA_DIR/control.sock``, else ``~/.lattica/control.sock`` (as latticad)."""
    if socket_path:
        return os.fspath(socket_path)
    d = data_dir or os.environ.get("LATTICA_DATA_DIR") or os.path.expanduser("~/.lattica")
    return os.path.join(os.fspath(d), "control.sock")


class ControlClient:
    """A connection to latticad's control socket. ``call(method, **params)`` returns the result
    dict or raises a :class:`LatticaError` subclass for the daemon's error code."""

    def __init__(self, socket_path, timeout=None):
        self.socket_path = os.fspath(socket_path)
        self._ids = itertools.count(1)
        self._buf = b""
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(10)
        try:
            s.connect(self.socket_path)
        except FileNotFoundError:
            s.close()
            raise DaemonNotFound(self.socket_path, "no such file") from None
        except ConnectionRefusedError:
            s.close()
            raise DaemonNotFound(self.socket_path, "connection refused (a stale socket: the daemon is not running)") from None
        except PermissionError:
            s.close()
            raise DaemonNotFound(self.socket_path, "permission denied (the socket belongs to another user)") from None
        except OSError as e:
            s.close()
            raise DaemonNotFound(self.socket_path, e.strerror or str(e)) from None
        s.settimeout(timeout)
        self._sock = s

    def close(self):
        if self._sock is not None:
            try:
                self._sock.close()
            finally:
                self._sock = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def call(self, method, timeout=None, **params):
        if self._sock is None:
            raise DaemonGone(f"{method}: the connection to {self.socket_path} is closed")
        rid = next(self._ids)
        line = json.dumps({"v": API_VERSION, "id": rid, "method": method,
                           "params": {k: v for k, v in params.items() if v is not None}},
                          separators=(",", ":")).encode() + b"\n"
        try:
            self._sock.settimeout(timeout)
            self._sock.sendall(line)
            reply = self._read_line(method)
        except (BrokenPipeError, ConnectionResetError) as e:
            self.close()
            raise DaemonGone(f"{method}: latticad at {self.socket_path} closed the connection ({e.strerror})") from None
        except socket.timeout:
            self.close()
            raise DaemonGone(f"{method}: no answer from latticad at {self.socket_path} within {timeout} s") from None
        msg = json.loads(reply)
        if msg.get("id") != rid:
            self.close()
            raise DaemonGone(f"{method}: answer for request {msg.get('id')} instead of {rid}")
        if msg.get("ok"):
            return msg.get("result", {})
        raise from_error_body(msg.get("error", {}), method)

    def _read_line(self, method):
        while b"\n" not in self._buf:
            chunk = self._sock.recv(1 << 16)
            if not chunk:
                self.close()
                raise DaemonGone(f"{method}: latticad at {self.socket_path} closed the connection (stopped or crashed)")
            self._buf += chunk
        line, _, self._buf = self._buf.partition(b"\n")
        return line
