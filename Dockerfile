# syntax=docker/dockerfile:1
# The eventyay-bbb image: `docker build -t eventyay-bbb .` from the repository root.

FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
# The cache mounts keep the registry and build artefacts between builds; the binary is copied out
# of them because a cache mount does not persist into the layer.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked \
    && install -D target/release/eventyay-bbb /out/eventyay-bbb \
    && mkdir /out/data

# glibc, libgcc and ca-certificates (BBB servers are reached over HTTPS with the system's roots),
# no shell, no package manager. Built on bookworm, so the builder's glibc matches.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/eventyay-bbb /usr/local/bin/eventyay-bbb
# Where the SQLite database lives unless configured otherwise; a volume mounted here keeps it.
COPY --from=build --chown=65532:65532 /out/data /data
# Numeric, so the kubelet can verify runAsNonRoot.
USER 65532:65532
# A container reachable only on its own loopback would be useless.
ENV EVENTYAY_BBB_LISTEN=0.0.0.0:50051 \
    EVENTYAY_BBB_DATABASE_URL=sqlite:///data/eventyay-bbb.db?mode=rwc
EXPOSE 50051
ENTRYPOINT ["/usr/local/bin/eventyay-bbb"]
CMD ["serve"]
