"""Shared-memory buffers of the trainer API: a file under /dev/shm (tmpfs), mode 0600, exactly
4 × count bytes of float32 little endian, mapped into this process as a numpy array."""

import mmap
import os

import numpy as np


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
            self._map = mmap.mmap(fd, 4 * self.count, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        finally:
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
