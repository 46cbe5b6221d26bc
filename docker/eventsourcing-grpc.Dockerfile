# The application server, FROM scratch: a static binary built on the host,
# no shell, no registry needed. `make images` prepares the context (the
# binary, the host's CA bundle, empty data and tmp directories) and builds
# it. One image serves every application: APPLICATION_TOPIC selects which
# one a container serves (see docker-compose.yml and deploy/k8s/).
#
#   docker run --rm eventsourcing-grpc:latest health orders:50051
#
# /data is writable by the image's user, for SQLite databases on a volume.
FROM scratch
COPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --chown=65532:65532 data /data
COPY --chown=65532:65532 tmp /tmp
COPY eventsourcing-grpc /usr/local/bin/eventsourcing-grpc
ENV TMPDIR=/tmp
WORKDIR /app
USER 65532:65532
EXPOSE 50051 50052 50053
ENTRYPOINT ["/usr/local/bin/eventsourcing-grpc"]
CMD ["server"]
