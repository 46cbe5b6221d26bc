# The images built from source, for machines that can pull the Go and
# distroless base images from a registry:
#
#   docker build -t eventsourcing-grpc:latest .
#   docker build --target esdb-emulator -t esdb-emulator:latest .
#
# Without a registry, `make images` builds the same two images FROM scratch
# from binaries built on the host (docker/*.Dockerfile). Both ways the
# binaries are static and the images run as the numeric user 65532.

FROM golang:1.26 AS build
WORKDIR /src
# The repository is a workspace of modules (go.work): the build needs
# every module's go.mod, so the whole tree is copied before downloading.
COPY . .
RUN go mod download
# Static: the SQLite module is pure Go, so no cgo is needed.
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/ ./example/cmd/eventsourcing-grpc ./cmd/esdb-emulator \
 && mkdir -p /out/data

# The EventStoreDB emulator: 0.0.0.0:2113, its log in /data.
FROM gcr.io/distroless/static-debian12:nonroot AS esdb-emulator
COPY --from=build --chown=65532:65532 /out/data /data
COPY --from=build /out/esdb-emulator /usr/local/bin/esdb-emulator
ENV EVENTSTORE_NODE_IP=0.0.0.0 EVENTSTORE_DB=/data
USER 65532:65532
EXPOSE 2113
HEALTHCHECK --interval=5s --timeout=4s --start-period=2s --retries=3 CMD ["/usr/local/bin/esdb-emulator", "health"]
ENTRYPOINT ["/usr/local/bin/esdb-emulator"]

# One image for every application: APPLICATION_TOPIC selects which one a
# container serves (see docker-compose.yml and deploy/k8s/). The last
# stage, so a plain `docker build .` builds it.
FROM gcr.io/distroless/static-debian12:nonroot AS eventsourcing-grpc
COPY --from=build --chown=65532:65532 /out/data /data
COPY --from=build /out/eventsourcing-grpc /usr/local/bin/eventsourcing-grpc
WORKDIR /app
USER 65532:65532
EXPOSE 50051 50052 50053
ENTRYPOINT ["/usr/local/bin/eventsourcing-grpc"]
CMD ["server"]
