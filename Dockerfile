# Multi-stage build: compile in the Rust image, run on slim Debian.
FROM rust:1.95-bookworm AS build
WORKDIR /src
RUN apt-get update && apt-get install -y --no-install-recommends pkg-config libssl-dev \
    && rm -rf /var/lib/apt/lists/*
COPY Cargo.toml Cargo.lock rustfmt.toml ./
# The queries are checked at compile time against .sqlx/ (SQLX_OFFLINE in .cargo/config.toml):
# the build needs no database.
COPY .cargo ./.cargo
COPY .sqlx ./.sqlx
COPY src ./src
COPY migrations ./migrations
COPY templates ./templates
COPY static ./static
# Declared bench targets must exist for Cargo to read the manifest.
COPY benches ./benches
RUN cargo build --release --locked --bin paperboy

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates libssl3 \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home /app paperboy \
    && mkdir -p /app/outbox /app/models /app/secret \
    && chown paperboy /app/outbox /app/models /app/secret && chmod 700 /app/secret
COPY --from=build /src/target/release/paperboy /usr/local/bin/paperboy
USER paperboy
WORKDIR /app
ENV PAPERBOY_BIND=0.0.0.0:8080
# The sentence-embedding model is downloaded once into the Hugging Face cache here (a
# volume in docker-compose.yml, so a new container does not download it again).
ENV HF_HOME=/app/models
# The generated signing key (when PAPERBOY_SECRET is unset) outlives the container in a
# volume here; losing it would void every link already mailed.
ENV PAPERBOY_SECRET_FILE=/app/secret/paperboy-secret
EXPOSE 8080
# `paperboy healthcheck` asks /healthz on PAPERBOY_BIND (loopback for 0.0.0.0) and gives
# up after 3 s with a one-line reason; the slim image has no curl, and its /bin/sh (dash)
# has no /dev/tcp.
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=5 \
    CMD ["paperboy", "healthcheck"]
ENTRYPOINT ["paperboy"]
CMD ["serve"]
