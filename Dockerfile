# dimsum: a small, non-root, read-only-root-filesystem image, reproducible from a commit.
#
#   podman build --format docker --timestamp "$(git log -1 --format=%ct)" --identity-label=false -t dimsum .
#   docker buildx build --build-arg SOURCE_DATE_EPOCH="$(git log -1 --format=%ct)" -t dimsum .
#   docker run --read-only -p 8080:8080 -v /path/to/clouddriver.yml:/etc/dimsum/config.yaml:ro dimsum
#
# The bases are pinned by digest, so a rebuild starts from the bytes that were reviewed. To bump
# one, read the tag's digest now and replace it below (docs/operations.md, "The image"):
#   skopeo inspect --format '{{.Digest}}' docker://docker.io/library/rust:1.95-bookworm
#   skopeo inspect --format '{{.Digest}}' docker://gcr.io/distroless/cc-debian12:nonroot
ARG RUST_IMAGE=docker.io/library/rust:1.95-bookworm@sha256:6258907abe69656e41cd992e0b705cdcfabcbbe3db374f92ed2d47121282d4a1
ARG BASE_IMAGE=gcr.io/distroless/cc-debian12:nonroot@sha256:9dac0a79194e45a7da0158a9c6da57b217585af0786db3845d1f0ec1a0dd182f

FROM ${RUST_IMAGE} AS build
WORKDIR /src
# The dependencies in a layer of their own, compiled against stub sources: an edit of dimsum's
# sources recompiles dimsum alone.
COPY Cargo.toml Cargo.lock ./
COPY plugin/Cargo.toml plugin/Cargo.toml
RUN mkdir -p src plugin/src tests bench \
    && echo 'fn main() {}' > src/main.rs \
    && touch src/lib.rs plugin/src/lib.rs tests/main.rs bench/keyless_fixture.rs \
    && cargo build --release --locked --bin dimsum \
    && rm -rf src plugin/src tests bench
COPY . .
# COPY keeps the sources' own times, which may be older than the stubs' build: touch the crate
# roots so cargo builds the real sources instead of keeping the stub.
RUN touch src/main.rs src/lib.rs plugin/src/lib.rs \
    && cargo build --release --locked --bin dimsum \
    && strip target/release/dimsum

# distroless/cc: glibc, CA certificates (read on the first TLS handshake), no shell, user 65532.
FROM ${BASE_IMAGE}
COPY --from=build /src/target/release/dimsum /usr/local/bin/dimsum
USER 65532:65532
# The configuration is mounted here (Clouddriver's YAML; several files: separate with ':').
# `[::]` takes IPv4 and IPv6, so probes reach it in IPv4, IPv6 and dual-stack clusters.
ENV DIMSUM_CONFIG=/etc/dimsum/config.yaml \
    DIMSUM_LISTEN=[::]:8080
EXPOSE 8080
# For plain Docker and Compose (Kubernetes uses the manifests' probes): the image has no shell and
# no curl, so dimsum asks its own /readyz.
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 CMD ["/usr/local/bin/dimsum", "probe"]
ENTRYPOINT ["/usr/local/bin/dimsum"]
CMD ["serve"]
