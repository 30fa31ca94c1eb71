"""Shared-memory buffers of the trainer API: a file under /dev/shm (tmpfs), mode 0600, exactly
4 × count bytes of float32 little endian, mapped into this process as a numpy array."""

import mmap
import os

import numpy as np


def sweep_stale(prefix="latticaswift-"):
    """Removes /dev/shm files ``latticaswift-<pid>-…`` of processes that no longer exist (a
    trainer killed before it could clean up: latticad SIGTERMs its trainer when it stops)."""
    try:
        names = os.listdir("/dev/shm")
    except OSError:
        return 0
    removed = 0
    for n in names:
        if not n.startswith(prefix):
            continue
        pid = n[len(prefix):].split("-", 1)[0]
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            os.kill(int(pid), 0)
            continue  # alive (or not ours to judge)
        except ProcessLookupError:
            pass
        except PermissionError:
            continue
        try:
            os.unlink(os.path.join("/dev/shm", n))
            removed += 1
        except OSError:
            pass
    return removed


class SharedBuffer:
    def __init__(self, count, name):
        self.count = int(count)
        self.path = f"/dev/shm/{name}"
        try:
            os.unlink(self.path)  # a stale file of an earlier process with this name
        except FileNotFoundError:
            pass
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        try:
            os.ftruncate(fd, 4 * self.count)
            try:
                # tmpfs pages allocated now: a full /dev/shm is an error here, not a SIGBUS mid-step
                os.posix_fallocate(fd, 0, 4 * self.count)
            except OSError as e:
                os.close(fd)
                fd = -1
                os.unlink(self.path)
                from .errors import SharedMemoryError
                raise SharedMemoryError(f"cannot allocate {4 * self.count} bytes in /dev/shm for {self.path}: {e.strerror}") from None
            # mapped with its page tables filled (MAP_POPULATE): no page faults at the first hand-offs
            flags = mmap.MAP_SHARED | getattr(mmap, "MAP_POPULATE", 0)
            self._map = mmap.mmap(fd, 4 * self.count, flags, mmap.PROT_READ | mmap.PROT_WRITE)
        finally:
            if fd >= 0:
                os.close(fd)
        self.array = np.frombuffer(self._map, dtype="<f4", count=self.count)

    def close(self):
        self.array = None
        try:
            self._map.close()
        except (BufferError, ValueError):
            pass  # a view is still alive; the mapping goes with it
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass
