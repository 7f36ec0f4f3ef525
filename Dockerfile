# chargelink: one image, one binary; the compose file picks the subcommand per service.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --bin chargelink

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/chargelink /usr/local/bin/chargelink
USER 65532:65532
ENV CHARGELINK_LOG_FORMAT=json
ENTRYPOINT ["/usr/local/bin/chargelink"]
CMD ["worker"]
