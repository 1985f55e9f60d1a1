# The dovetail image: one static (musl) binary on distroless, run as the
# non-root user 65532. Build from the repository root:
#
#   docker build -t dovetail:dev .
#
# `tests/image/check-static` builds and checks the same binary without a
# container runtime.

FROM rust:1.95-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends musl-tools \
 && rm -rf /var/lib/apt/lists/*
RUN rustup target add x86_64-unknown-linux-musl
WORKDIR /src
COPY . .
RUN cargo build --release --locked --target x86_64-unknown-linux-musl -p dovetail \
 && cp target/x86_64-unknown-linux-musl/release/dovetail /dovetail

# Static, so no libc is needed: distroless/static has CA certificates and
# /etc/passwd entries for the nonroot user, and nothing else.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /dovetail /usr/local/bin/dovetail
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/dovetail"]
CMD ["controller"]
