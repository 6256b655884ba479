# llm-orchestrator container image.
#
#   docker build -t llm-orchestrator .
#   docker run --rm -p 8000:8000 -e AUTH_TOKEN=change-me -e OPENAI_API_KEY=sk-... \
#       -v "$PWD/data:/app/data" llm-orchestrator --config /app/conf/gateway.toml
#
# tests/docker.rs checks this file against Cargo.toml, .dockerignore and
# docker-compose.yml (cargo test --test docker); keep them in step.

# ---------------------------------------------------------------- build
# The Rust version must be at least Cargo.toml's rust-version (1.88); 1.95 is
# the toolchain the lockfile is tested with. Same Debian release (bookworm) as
# the runtime stage, so the binary's glibc requirement is met there.
FROM rust:1.95-bookworm AS build

# Pingora builds zlib-ng with cmake; ring, SQLite (bundled) and zlib-ng need a
# C compiler (already in rust:*-bookworm; listed so a -slim base still works).
RUN apt-get update \
    && apt-get install -y --no-install-recommends cmake build-essential \
    && rm -rf /var/lib/apt/lists/*

# The release profile keeps line tables for profiling the benchmarks; the
# image does not need them (~140 MB binary -> a fraction of that). Symbols
# stay, so panics still show function names.
ENV CARGO_PROFILE_RELEASE_DEBUG=0

WORKDIR /src

# Dependency layer: build every dependency against stub sources, so editing
# the gateway's own code does not rebuild them. Cargo parses every target the
# manifest declares, so the two [[bench]] files need stubs too (benchmarks are
# never built by `cargo build`, the stubs just let the manifest load).
COPY Cargo.toml Cargo.lock ./
RUN mkdir -p src benches \
    && echo 'fn main() {}' > src/main.rs \
    && : > src/lib.rs \
    && echo 'fn main() {}' > benches/load.rs \
    && echo 'fn main() {}' > benches/micro.rs \
    && cargo build --release --locked \
    && rm -rf src

# The real sources. admin/ holds the web console the binary embeds
# (include_bytes! in src/admin/console.rs). COPY keeps the files' own mtimes,
# which can be older than the stub build: touch the crate roots so cargo
# rebuilds the gateway instead of keeping the stub binary.
COPY src ./src
COPY admin ./admin
# Stream fixtures the adapters' unit tests embed (include_str!/include_bytes!,
# compiled only for tests, but the check in tests/docker.rs wants every
# embedded file present).
COPY tests/fixtures ./tests/fixtures
RUN touch src/main.rs src/lib.rs \
    && cargo build --release --locked

# ---------------------------------------------------------------- runtime
FROM debian:bookworm-slim

# ca-certificates: vendor APIs are reached over TLS (rustls with the system
# roots). Nothing else: the binary links only glibc and libgcc_s.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/*

RUN groupadd --system --gid 10001 gateway \
    && useradd --system --uid 10001 --gid gateway --home-dir /app \
        --no-create-home --shell /usr/sbin/nologin gateway

WORKDIR /app
COPY --from=build /src/target/release/llm-orchestrator /usr/local/bin/llm-orchestrator
# The example configuration (read-only, owned by root); docker-compose.yml
# mounts ./conf over it.
COPY conf ./conf
# SQLite (API-managed configuration, request logs) lives in /app/data, the one
# directory the gateway writes. A bind mount must be writable by uid 10001.
RUN mkdir -p /app/data && chown gateway:gateway /app/data
VOLUME ["/app/data"]

# APP_ENV=production: JSON logs on stderr.
# ADMIN_LISTEN on all interfaces: inside a container the default 127.0.0.1
# would make the admin port unreachable. Every admin API call from outside
# the container needs a bearer token (ADMIN_TOKEN, else AUTH_TOKEN; the log
# warns when they are the same), and the same API is already served under
# /api on the main port; docker-compose.yml publishes 8001 on the host's
# loopback only. Listening on all interfaces needs AUTH_TOKEN: without one the gateway
# refuses to start.
ENV APP_HOST=0.0.0.0 \
    APP_PORT=8000 \
    APP_ENV=production \
    ADMIN_LISTEN=0.0.0.0:8001 \
    DATABASE_URL=sqlite:////app/data/llm_orchestrator.db

USER gateway
EXPOSE 8000 8001

# GET /health answers without a token. bookworm-slim has no curl or wget; bash
# (always present) speaks HTTP through /dev/tcp, so no extra package is needed.
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
    CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/${APP_PORT:-8000} && printf 'GET /health HTTP/1.1\\r\\nHost: localhost\\r\\nConnection: close\\r\\n\\r\\n' >&3 && head -n 1 <&3 | grep -q ' 200 '"]

# Pingora shuts down gracefully on SIGTERM (server.grace_period_secs).
STOPSIGNAL SIGTERM
ENTRYPOINT ["llm-orchestrator"]
# Embedded defaults (no providers; add them through the admin API, stored in
# /app/data), so the image needs no vendor key to start (AUTH_TOKEN it does
# need). conf/gateway.toml needs
# OPENAI_API_KEY: pass `--config /app/conf/gateway.toml` with the key set, as
# docker-compose.yml does.
CMD ["serve"]
