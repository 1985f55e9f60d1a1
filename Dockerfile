# The controller's image: `dovetail` alone on a distroless base, running as
# the non-root user 65532 the Helm chart expects (charts/dovetail).
#
#   docker build -t <registry>/dovetail:0.1.0 .
#
# The chart runs it as `dovetail controller` (its args: `controller`).
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p dovetail \
 && install -m 0755 target/release/dovetail /usr/local/bin/dovetail

# glibc, libgcc and CA certificates, no shell; `nonroot` is uid/gid 65532.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /usr/local/bin/dovetail /usr/local/bin/dovetail
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/dovetail"]
CMD ["controller"]
