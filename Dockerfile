# dimsum: a small, non-root, read-only-root-filesystem image.
#   docker build -t dimsum .
#   docker run --read-only -p 8080:8080 -v /path/to/clouddriver.yml:/etc/dimsum/config.yaml:ro dimsum
FROM rust:1.95-bookworm AS build
WORKDIR /src
# Dependencies first, so source edits do not rebuild them.
COPY Cargo.toml Cargo.lock ./
COPY plugin/Cargo.toml plugin/Cargo.toml
RUN mkdir -p src plugin/src && echo 'fn main() {}' > src/main.rs && touch src/lib.rs plugin/src/lib.rs \
    && cargo fetch --locked
COPY . .
RUN cargo build --release --locked --bin dimsum && strip target/release/dimsum

# distroless/cc: glibc, CA certificates (read on the first TLS handshake), no shell, user 65532.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/dimsum /usr/local/bin/dimsum
USER 65532:65532
# The configuration is mounted here (Clouddriver's YAML; several files: separate with ':').
ENV DIMSUM_CONFIG=/etc/dimsum/config.yaml \
    DIMSUM_LISTEN=0.0.0.0:8080
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/dimsum"]
CMD ["serve"]
