"""Shared-memory buffers of the trainer API: exactly 4 × count bytes of float32 little endian,
mode 0600, mapped into this process as a numpy array. By default a memfd sealed against shrinking
and growing (``F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL``), named to the daemon as
``/proc/<pid>/fd/<n>``: the daemon may then map it and read θ and write the answer in place (a
mapping of a file that can shrink could fault). Where memfds or seals are missing, a file under
/dev/shm (tmpfs), which the daemon reads and writes with pread/pwrite (Docs/TRAINER-API.md)."""

import fcntl
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


def _sealed_memfd(name, size):
    """A memfd of ``size`` bytes, mode 0600, sealed against shrinking and growing; None when this
    system (or Python) has no memfds or seals."""
    create = getattr(os, "memfd_create", None)
    seals = [getattr(fcntl, n, None) for n in ("F_ADD_SEALS", "F_SEAL_SHRINK", "F_SEAL_GROW", "F_SEAL_SEAL")]
    if create is None or None in seals or not hasattr(os, "MFD_ALLOW_SEALING"):
        return None
    add, shrink, grow, seal = seals
    try:
        fd = create(name, os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
    except OSError:
        return None
    try:
        os.fchmod(fd, 0o600)
        os.ftruncate(fd, size)
        # memory allocated now: a full tmpfs is an error here, not a SIGBUS mid-step
        os.posix_fallocate(fd, 0, size)
        fcntl.fcntl(fd, add, shrink | grow | seal)
    except OSError:
        os.close(fd)
        raise
    return fd


class SharedBuffer:
    def __init__(self, count, name, memfd=True):
        self.count = int(count)
        self._fd = None
        if memfd and self.count > 0:
            try:
                fd = _sealed_memfd(name, 4 * self.count)
            except OSError as e:
                from .errors import SharedMemoryError
                raise SharedMemoryError(f"cannot allocate {4 * self.count} bytes of shared memory for {name}: {e.strerror}") from None
            if fd is not None:
                self._fd = fd
                self.path = f"/proc/{os.getpid()}/fd/{fd}"
                self.sealed = True
                flags = mmap.MAP_SHARED | getattr(mmap, "MAP_POPULATE", 0)
                self._map = mmap.mmap(fd, 4 * self.count, flags, mmap.PROT_READ | mmap.PROT_WRITE)
                self.array = np.frombuffer(self._map, dtype="<f4", count=self.count)
                return
        self.sealed = False
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
        if self._fd is not None:
            os.close(self._fd)  # the memfd's memory goes with its last reference
            self._fd = None
            return
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass
