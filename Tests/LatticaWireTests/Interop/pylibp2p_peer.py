"""A py-libp2p peer (PyPI `libp2p`) for InteropTests: Noise + yamux, with an `/echo/1.0.0` handler.

  listen:  python pylibp2p_peer.py listen PORT SECONDS   -> prints "PEER <id>"
  dial:    python pylibp2p_peer.py dial /ip4/127.0.0.1/tcp/PORT/p2p/ID   -> opens /echo/1.0.0, prints "ECHO ..."
"""
import sys

import multiaddr
import trio
from libp2p import generate_new_ed25519_identity, new_host
from libp2p.peer.peerinfo import info_from_p2p_addr


async def echo(stream):
    try:
        while True:
            data = await stream.read(65536)
            if not data:
                break
            await stream.write(data)
    finally:
        await stream.close()


async def main():
    host = new_host(key_pair=generate_new_ed25519_identity(), muxer_preference="YAMUX")
    if sys.argv[1] == "listen":
        async with host.run(listen_addrs=[multiaddr.Multiaddr(f"/ip4/127.0.0.1/tcp/{sys.argv[2]}")]):
            host.set_stream_handler("/echo/1.0.0", echo)
            print("PEER", host.get_id().to_string(), flush=True)
            await trio.sleep(float(sys.argv[3]))
    else:
        async with host.run(listen_addrs=[multiaddr.Multiaddr("/ip4/127.0.0.1/tcp/0")]):
            info = info_from_p2p_addr(multiaddr.Multiaddr(sys.argv[2]))
            await host.connect(info)
            stream = await host.new_stream(info.peer_id, ["/echo/1.0.0"])
            await stream.write(b"hello from py-libp2p")
            print("ECHO", await stream.read(1024), flush=True)
            await stream.close()
            await trio.sleep(1)


trio.run(main)
