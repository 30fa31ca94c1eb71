"""Bad input gets a clear Python exception, and the daemon keeps working."""

import os
import signal
import socket as pysocket
import tempfile

import numpy as np
import pytest

from conftest import solo_run
from helpers import child_trainer, expect_line
from latticaswift import (BadRequest, DaemonGone, DaemonNotFound, Session, ShapeMismatch, SharedMemoryError, SlotBusy,
                          StepInProgress, UnknownRun, UnsupportedVersion)
from latticaswift.control import ControlClient
from latticaswift.testnet import ignoring_sigterm, run_config


def daemon_ok(d):
    assert d.alive(), d.log_tail()
    assert d.call("status")["peer_id"] == d.peer_id


def test_no_daemon_names_the_socket():
    path = os.path.join(tempfile.mkdtemp(), "control.sock")
    with pytest.raises(DaemonNotFound) as e:
        Session("x.run", socket=path)
    assert path in str(e.value) and "no such file" in str(e.value)
    assert e.value.socket == path


def test_stale_socket_is_no_daemon():
    path = os.path.join(tempfile.mkdtemp(), "control.sock")
    s = pysocket.socket(pysocket.AF_UNIX)
    s.bind(path)
    s.close()  # the file stays, nobody listens
    with pytest.raises(DaemonNotFound) as e:
        Session("x.run", data_dir=os.path.dirname(path))
    assert path in str(e.value) and "refused" in str(e.value)


def test_unknown_run(net1):
    with pytest.raises(UnknownRun) as e:
        Session(net1.daemons[0].peer_id + ".nope", socket=net1.daemons[0].socket)
    assert "nope" in str(e.value) and e.value.code == "not_found"
    daemon_ok(net1.daemons[0])


def test_old_api_version(net1):
    d = net1.daemons[0]
    run = solo_run(net1)
    with pytest.raises(UnsupportedVersion) as e:
        Session(run, socket=d.socket, api_version=0)
    assert "version 0" in str(e.value) and "speaks 1" in str(e.value)
    daemon_ok(d)
    with Session(run, socket=d.socket) as s:  # the right version still attaches
        assert s.step == 0


def test_second_trainer_same_slot(net1):
    d = net1.daemons[0]
    run = solo_run(net1)
    child = child_trainer(run, d.socket, "hold", 16)
    try:
        expect_line(child, "attached")
        with pytest.raises(SlotBusy) as e:
            Session(run, socket=d.socket)
        assert str(child.pid) in str(e.value)
        daemon_ok(d)
    finally:
        child.kill()
        child.wait()
    with Session(run, socket=d.socket, share_theta0=False) as s:  # the slot is free once the holder is gone
        s.start(np.zeros(16, np.float32))
        out = s.average(np.ones(16, np.float32))
        assert out.shape == (16,)


def test_shape_mismatch_with_the_run(net1):
    d = net1.daemons[0]
    run = solo_run(net1)
    with Session(run, socket=d.socket, share_theta0=False) as s:
        s.start(np.zeros(100, np.float32))
        with pytest.raises(ShapeMismatch) as e:
            s.average(np.zeros(101, np.float32))
        assert e.value.expected == 100 and e.value.got == 101
        # the daemon's own check, bypassing the client's: a file and count of 101 for a run of 100
        path = "/dev/shm/latticaswift-test-101"
        np.zeros(101, np.float32).tofile(path)
        os.chmod(path, 0o600)
        try:
            with ControlClient(d.socket) as c, pytest.raises(ShapeMismatch) as e:
                c.call("trainer.outer_step", run=run, step=0, shm=path, count=101)
            assert "101" in str(e.value) and "100" in str(e.value)
        finally:
            os.unlink(path)
        out = s.average(np.ones(100, np.float32))  # the right size still steps
        assert out.shape == (100,) and s.step == 1
    daemon_ok(d)


def test_shape_mismatch_with_member_0s_model(net2):
    run = net2.start_run("shape", run_config(nodes=2, k=2, rounds=5))
    s0 = Session(run, socket=net2.daemons[0].socket)
    try:
        s0.start(np.zeros(50, np.float32))
        with Session(run, socket=net2.daemons[1].socket) as s1:
            with pytest.raises(ShapeMismatch) as e:
                s1.start(np.zeros(60, np.float32))
            assert e.value.expected == 50 and e.value.got == 60
            assert "member 0" in str(e.value)
    finally:
        s0.close()
    daemon_ok(net2.daemons[1])


def test_shared_memory_of_the_wrong_size(net1):
    d = net1.daemons[0]
    run = solo_run(net1)
    with Session(run, socket=d.socket, share_theta0=False) as s:
        s.start(np.zeros(64, np.float32))
        path = "/dev/shm/latticaswift-test-wrong-size"
        np.zeros(65, np.float32).tofile(path)  # 4 bytes too many for count 64
        os.chmod(path, 0o600)
        try:
            with ControlClient(d.socket) as c, pytest.raises(SharedMemoryError) as e:
                c.call("trainer.outer_step", run=run, step=0, shm=path, count=64)
            assert e.value.code == "bad_request" and path in str(e.value) and "260 bytes" in str(e.value)
            assert isinstance(e.value, BadRequest)
        finally:
            os.unlink(path)
        daemon_ok(d)
        out = s.average(np.ones(64, np.float32))  # the session goes on
        assert np.isfinite(out).all() and s.step == 1


def test_trainer_dies_mid_step(net2):
    """A trainer killed while its outer step waits for a peer: the daemon goes on, notices the
    dead pid (or the next trainer taking the slot) and fails that step; the next trainer attaches
    and trains with its peer, with no train.stop needed."""
    d0, d1 = net2.daemons
    run = net2.start_run("dies", run_config(nodes=2, k=2, rounds=5))
    child = child_trainer(run, d0.socket, "step", 32)
    try:
        expect_line(child, "attached")
        expect_line(child, "sent")  # the member on daemon 1 never steps: the outer step waits for it
        child.send_signal(signal.SIGKILL)
        child.wait()
    finally:
        child.kill()
        child.wait()
    daemon_ok(d0)
    with Session(run, socket=d0.socket, share_theta0=False, orphan_wait=3) as s, \
            Session(run, socket=d1.socket, share_theta0=False) as s1:
        s.start(np.zeros(32, np.float32))
        s1.start(np.zeros(32, np.float32))
        p1 = s1.average_async(np.ones(32, np.float32))
        out = s.average(np.ones(32, np.float32))
        e1 = s1.apply(p1)
        assert np.isfinite(out).all() and d0.peer_id in e1.partners
    daemon_ok(d0)


def test_daemon_dies_mid_step(net2):
    d0 = net2.daemons[0]
    run = net2.start_run("daemon-dies", run_config(nodes=2, k=2, rounds=5))
    with Session(run, socket=d0.socket, share_theta0=False) as s:
        s.start(np.zeros(32, np.float32))
        p = s.average_async(np.ones(32, np.float32))  # waits for the member on daemon 1, which never steps
        assert not p.wait(0.5)
        d0.proc.send_signal(signal.SIGKILL)
        with pytest.raises(DaemonGone) as e:
            p.result()
        assert d0.socket in str(e.value)
