# Multi-node test nets for users: `docker compose up` (see docker-compose.yml, Docs/TESTNETS.md).
# Build stage: Swift on Debian 12 with the C libraries latticad links.
FROM swift:6.1-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends \
      libuv1-dev libsodium-dev libsqlite3-dev libopenblas-dev pkg-config && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Package.swift ./
COPY Sources ./Sources
COPY Tests ./Tests
RUN swift build -c release --product latticad && swift build -c release --product lattica \
 && swift build -c release --product lattica-train \
 && mkdir /out && for p in latticad lattica lattica-train; do cp "$(swift build -c release --show-bin-path)/$p" /out/; done

# Routers and the STUN server of the test net: nftables NAT, coturn (target "router").
FROM debian:bookworm-slim AS router
RUN apt-get update && apt-get install -y --no-install-recommends nftables iproute2 coturn \
 && rm -rf /var/lib/apt/lists/*
COPY Scripts/testnet/compose/router-entry.sh /usr/local/bin/router-entry
COPY Scripts/testnet/compose/turnserver.conf /etc/lattica/turnserver.conf
ENTRYPOINT ["router-entry"]

# A node (target "node"): the runtime libraries only. The entry point sets the default route when
# LATTICA_GATEWAY is given (hosts behind a router container), then runs latticad as user lattica.
FROM swift:6.1-bookworm-slim AS node
RUN apt-get update && apt-get install -y --no-install-recommends \
      libuv1 libsodium23 libsqlite3-0 libopenblas0-pthread iproute2 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --home /var/lib/lattica --create-home lattica \
 && mkdir /shared && chown lattica:lattica /shared
COPY --from=build /out/latticad /out/lattica /out/lattica-train /usr/local/bin/
COPY Scripts/testnet/compose/node-entry.sh /usr/local/bin/node-entry
COPY Scripts/testnet/compose/node.toml /etc/lattica/testnet.toml
ENV LATTICA_DATA_DIR=/var/lib/lattica
EXPOSE 4001
ENTRYPOINT ["node-entry"]
