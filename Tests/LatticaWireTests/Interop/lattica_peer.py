"""A real rust-libp2p peer (the PyPI `lattica` package) for InteropTests.

  listen:  python lattica_peer.py listen PORT SECONDS       -> prints "PEER <id>", stays up
  dial:    python lattica_peer.py dial /ip4/127.0.0.1/tcp/PORT/p2p/ID   (dials through bootstrap)

Then run, in the worktree:
  LATTICA_INTEROP_DIAL=127.0.0.1:PORT/ID swift test --filter InteropTests/dials
  LATTICA_INTEROP_LISTEN=PORT swift test --filter InteropTests/accepts   (start `dial` once listening)
"""
import os
import sys
import tempfile
import time

from lattica import Lattica


def build(listen_port, bootstraps):
    d = tempfile.mkdtemp(prefix="wire-lattica-")
    return (Lattica.builder()
            .with_bootstraps(bootstraps)
            .with_listen_addrs([f"/ip4/127.0.0.1/tcp/{listen_port}"])
            .with_mdns(False).with_upnp(False).with_autonat(False).with_dcutr(False)
            .with_storage_path(d).with_dht_db_path(os.path.join(d, "dht")).with_key_path(d)
            .build())


if sys.argv[1] == "listen":
    node = build(sys.argv[2], [])
    print("PEER", node.peer_id(), flush=True)
    time.sleep(float(sys.argv[3]))
else:
    node = build(0, [sys.argv[2]])
    node.store("wire-interop", 1)
    time.sleep(3)
node.close()
