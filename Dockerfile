# tracer's container image, for running it on every node of a cluster
# (deploy/kubernetes/tracer.yaml; README, "On a cluster").
#
#     docker build -t tracer .
#
# The build stage installs the eBPF toolchain with the project's own
# `cargo xtask setup --build-only` (nightly's rust-src, and bpf-linker built
# against nightly's libLLVM), then builds tracer in release mode; the eBPF
# object is embedded in the binary. The runtime image holds only the binary
# on distroless's glibc base (libc, libgcc; no shell, no package manager).
# Needs access to Docker Hub and gcr.io for the base images, and to
# static.rust-lang.org and crates.io for the toolchains and crates.

# The stable release rust-toolchain.toml pins; the image's default toolchain.
ARG RUST_VERSION=1.98.0

FROM docker.io/library/rust:${RUST_VERSION}-bookworm AS build
WORKDIR /src

# The toolchain first, from only what `cargo xtask setup` reads: this layer
# (bpf-linker takes minutes to build) is reused until the toolchain files,
# the manifests or xtask change. The other members get empty sources here so
# that cargo can load the workspace; the COPY below replaces them.
COPY Cargo.toml Cargo.lock rust-toolchain.toml ./
COPY .cargo .cargo
COPY xtask xtask
COPY bench bench
COPY tracer/Cargo.toml tracer/Cargo.toml
COPY tracer-common/Cargo.toml tracer-common/Cargo.toml
COPY tracer-ebpf/Cargo.toml tracer-ebpf/rust-toolchain.toml tracer-ebpf/
RUN mkdir -p tracer/src tracer-common/src tracer-ebpf/src \
    && touch tracer/src/main.rs tracer-common/src/lib.rs \
        tracer-ebpf/src/lib.rs tracer-ebpf/src/main.rs \
    && rustup toolchain install \
    && cargo xtask setup --build-only

COPY . .
RUN cargo build --release --locked -p tracer \
    && install -D target/release/tracer /out/tracer \
    && /out/tracer --version

# distroless "cc": glibc and libgcc, which is all tracer links against. It runs
# as root (uid 0) so that the capabilities the DaemonSet adds are effective;
# tracer drops all but three of them once its programs are attached.
FROM gcr.io/distroless/cc-debian12
COPY --from=build /out/tracer /usr/local/bin/tracer
EXPOSE 9464
ENTRYPOINT ["/usr/local/bin/tracer"]
CMD ["--headless", "--prometheus", "0.0.0.0:9464"]
