#!/usr/bin/env python3
"""Delays every packet of an NFQUEUE queue by a fixed time (this kernel has no netem).

  nfq_delay.py --queue N --delay-ms MS

Packets arrive in order; each is held until its arrival time + MS, then accepted. The main thread
reads the queue; a second thread gives the verdicts when their time has come (netfilterqueue
allows a verdict after the callback returned). Prints
"bound" once the queue is bound (lib.sh waits for it). Needs python netfilterqueue (a venv, see
tn_nfq_python in lib.sh).
"""
import argparse, collections, socket, threading, time
from netfilterqueue import NetfilterQueue


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--queue", type=int, required=True)
    p.add_argument("--delay-ms", type=float, required=True)
    a = p.parse_args()
    delay = a.delay_ms / 1000.0
    held = collections.deque()
    cv = threading.Condition()

    def on_packet(pkt):
        pkt.retain()  # keep the payload past the callback; the verdict comes later
        with cv:
            held.append((time.monotonic() + delay, pkt))
            cv.notify()

    def releaser():
        while True:
            with cv:
                while not held:
                    cv.wait()
                due, pkt = held[0]
                now = time.monotonic()
                if due > now:
                    cv.wait(due - now)
                    continue
                held.popleft()
            pkt.accept()

    nfq = NetfilterQueue()
    nfq.bind(a.queue, on_packet, max_len=4096)
    threading.Thread(target=releaser, daemon=True).start()
    print("bound", flush=True)
    s = socket.fromfd(nfq.get_fd(), socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        nfq.run_socket(s)
    finally:
        nfq.unbind()


if __name__ == "__main__":
    main()
