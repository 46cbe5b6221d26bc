# The EventStoreDB emulator, FROM scratch: a static binary built on the
# host, no shell, no registry needed. `make images` prepares the context
# (the binary, and empty data and tmp directories) and builds it:
#
#   docker run -d -p 2113:2113 -v esdb-data:/data esdb-emulator:latest
#
# It reads EventStoreDB's settings (EVENTSTORE_INSECURE, the certificate
# paths, EVENTSTORE_DB, EVENTSTORE_MEM_DB, ...; see cmd/esdb-emulator).
# By default it listens on 0.0.0.0:2113 without TLS and keeps its log in
# /data, so a restarted container, or a new one on the same volume, has
# the same events.
FROM scratch
COPY --chown=65532:65532 data /data
COPY --chown=65532:65532 tmp /tmp
COPY esdb-emulator /usr/local/bin/esdb-emulator
ENV EVENTSTORE_NODE_IP=0.0.0.0 EVENTSTORE_DB=/data TMPDIR=/tmp
USER 65532:65532
EXPOSE 2113
HEALTHCHECK --interval=5s --timeout=4s --start-period=2s --retries=3 CMD ["/usr/local/bin/esdb-emulator", "health"]
ENTRYPOINT ["/usr/local/bin/esdb-emulator"]
