"""Exceptions of latticaswift. Every failure of the daemon or of the trainer API is one of these,
with a message that says what was tried; nobody needs to parse a log line."""


class LatticaError(Exception):
    """Base class. ``code`` is the control API's error code (``bad_request``, ``not_found``, ...)
    when the daemon answered with an error, else None."""

    def __init__(self, message, code=None, method=None):
        super().__init__(message)
        self.code = code
        self.method = method


class DaemonNotFound(LatticaError):
    """No latticad listens on the control socket tried (``socket`` names it)."""

    def __init__(self, socket_path, reason):
        super().__init__(f"no latticad at control socket {socket_path}: {reason} "
                         f"(start one with `latticad --data-dir DIR`, or pass socket=/ data_dir=)")
        self.socket = socket_path


class DaemonGone(LatticaError):
    """The daemon closed the connection (it stopped or crashed) while a call was in flight."""


class UnknownRun(LatticaError):
    """The daemon is not in that run (``not_found``): join it first (train.join / Run.join)."""


class SlotBusy(LatticaError):
    """``busy``: another live trainer holds the run's trainer slot, or the daemon is in another run."""


class StepInProgress(SlotBusy):
    """The daemon still has an outer step in progress that this session did not send: the step
    of a trainer that held the slot before and died mid-step. latticad does not notice an external
    trainer's death, so the step can stay in progress for good; ``lattica train stop RUN`` and
    ``lattica train join RUN --shard I/N`` (or a daemon restart) clear it, and the run resumes
    from its checkpoint."""


class UnsupportedVersion(LatticaError):
    """``unsupported_version``: the daemon speaks another trainer API version."""


class BadRequest(LatticaError):
    """``bad_request``: the daemon refused the call's params (message names the field)."""


class ShapeMismatch(BadRequest):
    """The parameters handed over do not have the run's model size (``expected``/``got`` counts)."""

    def __init__(self, message, expected=None, got=None, code="bad_request", method=None):
        super().__init__(message, code=code, method=method)
        self.expected = expected
        self.got = got


class SharedMemoryError(BadRequest):
    """The daemon refused the shared-memory file (wrong size, owner, type, or not under /dev/shm)."""


class RunFinished(LatticaError):
    """The run's rounds are over: no further outer step will be taken."""


_BY_CODE = {
    "not_found": UnknownRun,
    "busy": SlotBusy,
    "unsupported_version": UnsupportedVersion,
    "bad_request": BadRequest,
}


def from_error_body(body, method):
    """The exception for a control API error ``{"code": ..., "message": ...}``."""
    code = body.get("code", "failed")
    message = body.get("message", "")
    text = f"{method}: {message} [{code}]"
    low = message.lower()
    if code == "bad_request" and method == "trainer.outer_step":
        if "the run's model has" in low or ("parameters" in low and "model" in low):
            return ShapeMismatch(text, method=method)
        if any(w in low for w in ("size", "regular file", "owner", "/dev/shm", "shared", "bytes")):
            return SharedMemoryError(text, code=code, method=method)
    if code == "failed" and "stopping" in low:
        return DaemonGone(text, code=code, method=method)
    return _BY_CODE.get(code, LatticaError)(text, code=code, method=method)
