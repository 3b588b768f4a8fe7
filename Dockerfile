# Multi-stage build: compile in the Rust image, run on slim Debian.
FROM rust:1.95-bookworm AS build
WORKDIR /src
RUN apt-get update && apt-get install -y --no-install-recommends pkg-config libssl-dev \
    && rm -rf /var/lib/apt/lists/*
COPY Cargo.toml Cargo.lock rustfmt.toml ./
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
    && mkdir -p /app/outbox && chown paperboy /app/outbox
COPY --from=build /src/target/release/paperboy /usr/local/bin/paperboy
USER paperboy
WORKDIR /app
ENV PAPERBOY_BIND=0.0.0.0:8080
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --retries=5 \
    CMD ["/bin/sh", "-c", "exec 3<>/dev/tcp/127.0.0.1/8080 && printf 'GET /healthz HTTP/1.0\\r\\n\\r\\n' >&3 && grep -q ok <&3"]
ENTRYPOINT ["paperboy"]
CMD ["serve"]
