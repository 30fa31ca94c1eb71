"""Structured events of a session: what happened, as typed values (no log line to parse)."""

from dataclasses import dataclass, field
from typing import List, Optional


@dataclass
class Event:
    kind: str = field(init=False, default="event")


@dataclass
class Attached(Event):
    run: str
    shard: str
    step: int
    rounds: int
    config: dict
    attack: str
    resumed: bool

    def __post_init__(self):
        self.kind = "attached"


@dataclass
class Started(Event):
    """θ0 is in place: ``source`` is ``published`` (this member shared its θ0), ``fetched`` (θ0 of
    the member who published it), ``checkpoint`` (resumed) or ``local`` (no sharing);
    ``model_id``: a shared θ0's model id in the daemons' model store (Docs/MODEL.md)."""
    step: int
    count: int
    source: str
    model_id: Optional[str] = None

    def __post_init__(self):
        self.kind = "started"


@dataclass
class OuterStep(Event):
    """An outer step is done and its result applied to the parameters.

    ``step``: the outer step the new parameters complete (the daemon's answer; larger than
    ``sent_step`` when the node caught up with peers ahead). ``partners``: peer ids aggregated.
    ``rejected``: contributions refused so far in the run; ``rejected_new``: in this step.
    ``bytes_in``/``bytes_out``: this step's model traffic (the daemon's); ``*_total``: the sums over
    this session's steps.
    ``daemon_ms``: the daemon's outer step; ``wall_ms``: hand-off to answer, seen from Python;
    ``handoff_ms``: time the training thread spent copying into / out of shared memory;
    ``staleness``: boundaries between hand-off and application (0: blocking, 1: overlapped as
    planned, more: the network was slower than the inner loop)."""
    step: int
    sent_step: int
    partners: List[str]
    rejected: int
    rejected_new: int
    bytes_in: int
    bytes_out: int
    bytes_in_total: int
    bytes_out_total: int
    daemon_ms: float
    wall_ms: float
    handoff_ms: float
    staleness: int
    loss: Optional[float] = None
    caught_up: bool = False

    def __post_init__(self):
        self.kind = "outer_step"


@dataclass
class Finished(Event):
    step: int
    accuracy: Optional[float]
    status: dict

    def __post_init__(self):
        self.kind = "finished"


@dataclass
class Failed(Event):
    error: BaseException

    def __post_init__(self):
        self.kind = "failed"
