# Multi-node test nets for users: `docker compose up` (see docker-compose.yml).
# Build stage: Swift on Debian 12 with the C libraries latticad links.
FROM swift:6.1-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends \
      libuv1-dev libsodium-dev libsqlite3-dev libopenblas-dev pkg-config && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Package.swift ./
COPY Sources ./Sources
COPY Tests ./Tests
RUN swift build -c release --product latticad && swift build -c release --product lattica \
 && mkdir /out && cp "$(swift build -c release --show-bin-path)"/latticad "$(swift build -c release --show-bin-path)"/lattica /out/

# Run stage: the runtime libraries only.
FROM swift:6.1-bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends \
      libuv1 libsodium23 libsqlite3-0 libopenblas0-pthread && rm -rf /var/lib/apt/lists/* \
 && useradd --system --home /var/lib/lattica --create-home lattica
COPY --from=build /out/latticad /out/lattica /usr/local/bin/
USER lattica
ENV LATTICA_DATA_DIR=/var/lib/lattica
EXPOSE 4001
ENTRYPOINT ["latticad", "--listen", "/ip4/0.0.0.0/tcp/4001", "--metrics-addr", "0.0.0.0:9464"]
