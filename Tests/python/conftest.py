"""Fixtures: real latticad daemons on loopback (binaries from $LATTICA_BIN_DIR), torn down also
when a test fails."""

import os
import sys

import pytest

from latticaswift.testnet import TestNet, run_config

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)


@pytest.fixture
def net1():
    with TestNet(1) as net:
        yield net


@pytest.fixture
def net2():
    with TestNet(2) as net:
        yield net


def solo_run(net, name="solo", **kw):
    """A run of one member (no peers: the outer step is the daemon's momentum update alone)."""
    cfg = dict(nodes=1, k=1, rounds=50, inner_steps=5, aggregator="mean", reputation=False)
    cfg.update(kw)
    return net.start_run(name, run_config(**cfg))
