"""The numpy-level session and the torch wrapper against real daemons."""

import threading

import numpy as np
import pytest
import torch

import latticaswift
import latticaswift.torch as lt
from conftest import solo_run
from latticaswift import RunFinished, Session
from latticaswift.testnet import run_config


def test_average_is_the_daemons_outer_step(net1):
    """One member, mean, α = 0.5, β = 0.5: m ← β·m + α·(θ − φ), φ ← φ + m, exactly."""
    d = net1.daemons[0]
    run = solo_run(net1, alpha=0.5, beta=0.5, rounds=3)
    with Session(run, socket=d.socket) as s:
        start = s.start(np.zeros(1000, np.float32))
        assert np.array_equal(start, np.zeros(1000))
        out1 = s.average(np.ones(1000, np.float32))         # agg 1, m 0.5, φ 0.5
        np.testing.assert_allclose(out1, 0.5, rtol=1e-6)
        out2 = s.average(np.full((10, 100), 2.0, np.float32))  # any shape of the run's size; agg 1.5, m 1.0, φ 1.5
        np.testing.assert_allclose(out2, 1.5, rtol=1e-6)
        s.average(out2)
        with pytest.raises(RunFinished):
            s.average(out2)
        s.done(accuracy=0.5)
        kinds = [e.kind for e in s.events(timeout=0)]
        assert kinds == ["attached", "started", "outer_step", "outer_step", "outer_step", "finished"]
        steps = [e for e in s.drain_events()]  # all consumed by the iterator
        assert steps == []


def test_events_carry_the_step(net1):
    d = net1.daemons[0]
    run = solo_run(net1, rounds=2)
    seen = []
    with Session(run, socket=d.socket, on_event=seen.append) as s:
        s.start(np.zeros(10, np.float32))
        s.average(np.ones(10, np.float32))
        s.average(np.ones(10, np.float32))
        outer = [e for e in seen if e.kind == "outer_step"]
        assert [e.sent_step for e in outer] == [0, 1] and [e.step for e in outer] == [0, 1]
        assert all(e.staleness == 0 and e.partners == [] and e.wall_ms >= e.daemon_ms for e in outer)
        st = s.status()
        assert st["step"] == 2 and st["trainer"] == "attached"
        assert seen[1].kind == "started" and seen[1].source == "published" and seen[1].count == 10


def test_module_level_average(net1):
    d = net1.daemons[0]
    run = solo_run(net1, alpha=1.0, beta=0.0, rounds=5)
    x0 = np.zeros((4, 5), np.float32)
    assert np.array_equal(latticaswift.average(x0, run, socket=d.socket), x0)  # the first call: θ0
    x1 = np.arange(20, dtype=np.float32).reshape(4, 5)
    np.testing.assert_allclose(latticaswift.average(x1, run, socket=d.socket), x1)  # α 1, β 0, alone: φ ← θ


def _linear_trainer(run, socket, overlap, zero_copy):
    """A parameter that every inner step moves by +1 (SGD, lr 1, gradient −1)."""
    w = torch.nn.Parameter(torch.zeros(8))
    inner = torch.optim.SGD([w], lr=1.0)
    opt = lt.Optimizer([w], inner, run=run, socket=socket, overlap=overlap, zero_copy=zero_copy, inner_steps=2, alpha=0.5,
                       beta=0.0)
    assert opt.zero_copy == bool(zero_copy)
    after = []
    for i in range(6):
        w.grad = torch.full((8,), -1.0)
        opt.step()
        if (i + 1) % 2 == 0:
            after.append(float(w.detach()[0]))
    opt.finish()
    return after, float(w.detach()[0])


@pytest.mark.parametrize("overlap,zero_copy", [(False, False), (False, True), (True, False)])
def test_overlap_semantics(net1, overlap, zero_copy):
    """Blocking: params ← φ_new at each boundary. Overlap: θ_t is handed over and training goes on;
    at the next boundary params += φ_{t+1} − θ_t (the local progress is kept)."""
    d = net1.daemons[0]
    run = solo_run(net1, name=f"lin{int(overlap)}", alpha=0.5, beta=0.0, rounds=3, inner_steps=2)
    after, final = _linear_trainer(run, d.socket, overlap, zero_copy)
    if overlap:
        # θ 2 sent; at 4: φ1 = 1, 4 + (1 − 2) = 3 sent; at 5: φ2 = 2, 5 + (2 − 3) = 4 sent; flush: φ3 = 3
        assert after == [2.0, 3.0, 4.0] and final == 3.0
    else:
        assert after == [1.0, 2.0, 3.0] and final == 3.0


def test_zero_copy_needs_blocking(net1):
    run = solo_run(net1)
    w = torch.nn.Parameter(torch.zeros(3))
    with pytest.raises(ValueError):
        lt.Optimizer([w], torch.optim.SGD([w], lr=0.1), run=run, socket=net1.daemons[0].socket, overlap=True, zero_copy=True)


def test_options_are_checked_against_the_run(net1):
    d = net1.daemons[0]
    run = solo_run(net1)
    w = torch.nn.Parameter(torch.zeros(3))
    with pytest.raises(latticaswift.LatticaError) as e:
        lt.Optimizer([w], torch.optim.SGD([w], lr=0.1), run=run, socket=d.socket, aggregator="krum")
    assert "aggregator" in str(e.value) and "krum" in str(e.value)


def test_two_torch_trainers_average(net2):
    """Two members with different torch seeds: θ0 is member 0's on both; the outer steps average
    them (partners, bytes); they learn digits."""
    from latticaswift import data
    from latticaswift.example import accuracy, build_model, train_local
    run = net2.start_run("pair", run_config(nodes=2, k=2, rounds=20, inner_steps=10, aggregator="mean", reputation=False))
    shards, (xt, yt), c = data.digits(seed=1, shards=2)
    results, errors = {}, []

    def trainer(i):
        try:
            torch.manual_seed(100 + i)
            model = build_model(64, c)
            events = []
            opt = lt.Optimizer(model.parameters(), torch.optim.Adam(model.parameters(), lr=3e-3), run=run,
                               socket=net2.daemons[i].socket, on_event=events.append)
            theta0 = torch.cat([p.detach().reshape(-1) for p in model.parameters()]).clone()
            x, y = shards[i]
            train_local(model, opt, x, y, 200, 32, i, step_fn=lambda loss: opt.step(loss=loss))
            opt.finish(accuracy=accuracy(model, xt, yt))
            results[i] = dict(theta0=theta0, final=torch.cat([p.detach().reshape(-1) for p in model.parameters()]),
                              acc=accuracy(model, xt, yt), events=events)
        except BaseException as e:
            errors.append(e)

    ts = [threading.Thread(target=trainer, args=(i,)) for i in range(2)]
    [t.start() for t in ts]
    [t.join(300) for t in ts]
    assert not errors, errors
    assert torch.equal(results[0]["theta0"], results[1]["theta0"])
    for i, other in ((0, 1), (1, 0)):
        ev = results[i]["events"]
        assert [e.kind for e in ev][:2] == ["attached", "started"]
        assert ev[1].source == ("published" if i == 0 else "fetched")
        outer = [e for e in ev if e.kind == "outer_step"]
        assert len(outer) == 20 and [e.sent_step for e in outer] == list(range(20))
        assert [e.staleness for e in outer[:-1]] == [1] * 19  # applied at the next boundary; the last by finish()
        assert sum(net2.daemons[other].peer_id in e.partners for e in outer) >= 10
        assert outer[-1].bytes_in_total >= 5 * 4 * ev[1].count and max(e.bytes_in for e in outer) >= 4 * ev[1].count
        assert ev[-1].kind == "finished" and ev[-1].status["step"] == 20
        assert results[i]["acc"] > 0.8, [r["acc"] for r in results.values()]
    moved = float((results[0]["final"] - results[0]["theta0"]).norm())
    apart = float((results[0]["final"] - results[1]["final"]).norm())
    assert apart < 0.2 * moved, (apart, moved)


def test_training_goes_on_while_the_network_is_late(net2):
    """max_staleness 3: a boundary whose answer is not there does not wait; the answer is applied
    at a later boundary (staleness 2), and the local progress made meanwhile is kept."""
    d0, d1 = net2.daemons
    run = net2.start_run("late", run_config(nodes=2, k=2, rounds=3, inner_steps=2, aggregator="mean", reputation=False,
                                            alpha=1.0, beta=0.0))
    w = torch.nn.Parameter(torch.zeros(4))
    seen = []
    opt = lt.Optimizer([w], torch.optim.SGD([w], lr=1.0), run=run, socket=d0.socket, max_staleness=3, on_event=seen.append)
    with Session(run, socket=d1.socket) as s1:
        s1.start(np.zeros(4, np.float32))

        def steps(n):
            for _ in range(n):
                w.grad = torch.full((4,), -1.0)
                opt.step()

        steps(2)  # boundary 1: θ = 2 handed over; daemon 0 waits for daemon 1's member
        steps(2)  # boundary 2: no answer yet: training goes on (w = 4)
        pending = opt.session.pending
        assert pending is not None and not pending.done() and float(w.detach()[0]) == 4.0
        p1 = s1.average_async(np.zeros(4, np.float32))  # the partner's θ for step 0: 0
        assert pending.wait(60)
        steps(2)  # boundary 3: applied now; w = 6 + (φ1 − 2)
        outer = [e for e in seen if e.kind == "outer_step"]
        assert len(outer) == 1 and outer[0].staleness == 2 and d1.peer_id in outer[0].partners
        s1.apply(p1)
        # φ1 = φ0 + α·mean(2 − 0, 0 − 0) = 1; the 4 local steps since the hand-off are kept: 6 + (1 − 2)
        assert float(w.detach()[0]) == pytest.approx(5.0)
    opt.close()


def test_create_and_join_a_run(net2):
    d0, d1 = net2.daemons
    run = latticaswift.create_run("made", nodes=2, shard=0, rounds=7, inner_steps=3, aggregator="median", reputation=False, k=2,
                                  alpha=0.9, beta=0.1, socket=d0.socket)
    assert run == f"{d0.peer_id}.made"
    assert latticaswift.join_run(run, shard=1, nodes=2, socket=d1.socket) == run
    w = torch.nn.Parameter(torch.zeros(3))
    opt = lt.Optimizer([w], torch.optim.SGD([w], lr=0.1), run=run, socket=d1.socket, aggregator="median", reputation=False, k=2,
                       alpha=0.9, beta=0.1, inner_steps=3, share_theta0=False)
    try:
        assert opt.inner_steps == 3 and opt.session.rounds == 7 and opt.session.shard == "1/2"
        assert opt.status()["members"] == 2
    finally:
        opt.close()
    with pytest.raises(latticaswift.SlotBusy) as e:  # a daemon trains in one run at a time
        latticaswift.join_run(d0.peer_id + ".other", shard=1, nodes=2, socket=d1.socket, timeout=0.5)
    assert "already training" in str(e.value)


def test_a_new_trainer_resumes_from_the_checkpoint(net1):
    d = net1.daemons[0]
    run = solo_run(net1, alpha=1.0, beta=0.0, rounds=10)
    with Session(run, socket=d.socket) as s:
        s.start(np.zeros(16, np.float32))
        s.average(np.full(16, 3.0, np.float32))
        last = s.average(np.full(16, 5.0, np.float32))  # α 1, β 0, alone: φ ← θ
    seen = []
    with Session(run, socket=d.socket, on_event=seen.append) as s:  # the trainer restarted
        assert s.step == 2 and s.checkpoint is not None
        start = s.start(np.zeros(16, np.float32))
        np.testing.assert_array_equal(start, last)
        assert seen[0].resumed and seen[1].source == "checkpoint"
        with Session(run, socket=d.socket) as s2, pytest.raises(latticaswift.ShapeMismatch) as e:
            s2.start(np.zeros(17, np.float32))
        assert e.value.expected == 16 and e.value.got == 17


def test_hand_off_through_a_sealed_memfd_is_mapped(net1):
    """The default buffers are memfds sealed against shrinking: the daemon maps them (its answer
    says ``shared_memory: mapped``); the seal stops a shrink that would fault its mapping."""
    import errno
    import os
    d = net1.daemons[0]
    run = solo_run(net1, name="memfd", alpha=1.0, beta=0.0, rounds=3)
    with Session(run, socket=d.socket) as s:
        s.start(np.zeros(1000, np.float32))
        buf = s._bufs[0]
        assert buf.sealed and buf.path == f"/proc/{os.getpid()}/fd/{buf._fd}"
        buf.array[:] = 2.0
        a = s._ctl.call("trainer.outer_step", run=run, step=s.step, shm=buf.path, count=s.count)
        assert a["shared_memory"] == "mapped"
        np.testing.assert_allclose(buf.array, 2.0)  # α 1, β 0, alone: φ ← θ, written in place
        with pytest.raises(OSError) as e:
            os.ftruncate(buf._fd, 4)
        assert e.value.errno == errno.EPERM


def test_hand_off_through_dev_shm_files_still_works(net1, monkeypatch):
    """``LATTICASWIFT_SHM=file`` (and an older daemon) use files under /dev/shm: pread/pwrite."""
    monkeypatch.setenv("LATTICASWIFT_SHM", "file")
    d = net1.daemons[0]
    run = solo_run(net1, name="devshm", alpha=1.0, beta=0.0, rounds=3)
    with Session(run, socket=d.socket) as s:
        s.start(np.zeros(100, np.float32))
        buf = s._bufs[0]
        assert not buf.sealed and buf.path.startswith("/dev/shm/")
        buf.array[:] = 3.0
        a = s._ctl.call("trainer.outer_step", run=run, step=s.step, shm=buf.path, count=s.count)
        assert a["shared_memory"] == "read"
        np.testing.assert_allclose(buf.array, 3.0)


def test_a_memfd_of_another_process_is_refused(net1):
    d = net1.daemons[0]
    run = solo_run(net1, name="otherfd", rounds=3)
    with Session(run, socket=d.socket) as s:
        s.start(np.zeros(100, np.float32))
        with pytest.raises(latticaswift.errors.BadRequest, match="not a descriptor of this run's trainer"):
            s._ctl.call("trainer.outer_step", run=run, step=s.step, shm="/proc/1/fd/0", count=s.count)
