# One image for every application: APPLICATION_TOPIC selects which one a
# container serves (see docker-compose.yml and deploy/k8s/).
#
#   docker build -t eventsourcing-grpc:latest .

FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# Static: the SQLite module is pure Go, so no cgo is needed.
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/eventsourcing-grpc ./cmd/eventsourcing-grpc

FROM gcr.io/distroless/static-debian12:nonroot
WORKDIR /app
COPY --from=build /out/eventsourcing-grpc /usr/local/bin/eventsourcing-grpc
USER nonroot:nonroot
EXPOSE 50051 50052 50053
ENTRYPOINT ["/usr/local/bin/eventsourcing-grpc"]
CMD ["server"]
