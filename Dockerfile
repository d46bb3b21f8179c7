# syntax=docker/dockerfile:1
# The line above selects the BuildKit Dockerfile frontend, which the `RUN --mount=type=cache`
# lines below need.
#
# Passerelle's container image: the one binary on a distroless base.
#
#   docker build -t passerelle:0.1.0 .
#   docker run --rm -p 8080:8080 passerelle:0.1.0              # embedded default: SQLite, in-process cache
#   docker run --rm passerelle:0.1.0 --help
#
# The same image runs every command (`serve`, `worker`, `migrate`, `bootstrap`, ...); the Helm
# chart in helm/passerelle only changes the arguments. For reproducible builds, pin both base
# images by digest (`rust:1.95-slim-bookworm@sha256:…`) once you have resolved them.

ARG RUST_VERSION=1.95

# --- Build ------------------------------------------------------------------------------------
# Debian bookworm on both sides: the binary links against the builder's glibc, so the builder
# must not be newer than the runtime (distroless cc-debian12 is bookworm, glibc 2.36). A trixie
# builder would produce a binary asking for glibc symbols the runtime does not have.
# The slim image carries gcc and libc6-dev, which the C parts of the build need (the bundled
# SQLite of libsqlite3-sys, ring). TLS is rustls with webpki roots: no OpenSSL to install.
FROM rust:${RUST_VERSION}-slim-bookworm AS builder
WORKDIR /src
COPY . .
# Cache mounts keep the crates.io downloads and the target directory between builds, so a
# change to one crate recompiles that crate and its dependents, not the ~500 crates underneath.
# They are not part of any layer, hence the binary is copied out of target/ in the same step.
# sharing=locked: two concurrent builds would otherwise write the same target directory.
# --locked: build exactly what Cargo.lock says, and fail rather than resolve anew.
# /out/data becomes the data directory: it must exist and belong to the runtime user for a plain
# `docker run` (Kubernetes mounts a volume there instead), and distroless has no shell to make it.
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/usr/local/cargo/git,sharing=locked \
    --mount=type=cache,target=/src/target,sharing=locked \
    cargo build --release --locked -p passerelle \
    && install -D -m 0755 target/release/passerelle /out/passerelle \
    && install -d -m 0750 /out/data

# --- Runtime ----------------------------------------------------------------------------------
# distroless/cc: glibc, libgcc (Rust's unwinder needs it), CA certificates and tzdata; no shell,
# no package manager, so nothing in the image an attacker could use. The :nonroot tag runs as
# uid/gid 65532, which the Helm chart's securityContext repeats (runAsUser 65532).
FROM gcr.io/distroless/cc-debian12:nonroot

LABEL org.opencontainers.image.title="passerelle" \
      org.opencontainers.image.description="Passerelle: the multi-tenant cross-channel marketing backend" \
      org.opencontainers.image.licenses="Apache-2.0"

# Only the binary: no sources, no toolchain, no build cache.
COPY --from=builder /out/passerelle /usr/local/bin/passerelle
COPY --from=builder --chown=65532:65532 /out/data /var/lib/passerelle

# Numeric, so Kubernetes' runAsNonRoot can verify it without reading /etc/passwd.
USER 65532:65532

# The binary's built-in default listens on 127.0.0.1, unreachable from outside a container;
# the data directory default (./data) would be relative to the working directory.
ENV PASSERELLE_LISTEN=0.0.0.0:8080 \
    PASSERELLE_DATA_DIR=/var/lib/passerelle

EXPOSE 8080

# No HEALTHCHECK: distroless has no curl or shell to run one. Orchestrators probe GET /livez and
# GET /readyz on port 8080 instead (the Helm chart does). No init process either: passerelle
# handles SIGTERM/SIGINT itself (graceful drain for `serve`, finish the round for `worker`) and
# starts no child processes to reap.
ENTRYPOINT ["/usr/local/bin/passerelle"]
CMD ["serve"]
