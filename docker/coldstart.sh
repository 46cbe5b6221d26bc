#!/usr/bin/env bash
# Measures the images of `make images`: their sizes, and the time from
# `docker run` to serving (the first health check that succeeds, polled every
# 10 ms from the host), with hyperfine (Debian: apt-get install hyperfine).
#
#   make images && bash docker/coldstart.sh [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-15}
emu=bin/images/esdb-emulator/esdb-emulator
app=bin/images/eventsourcing-grpc/eventsourcing-grpc
for f in "$emu" "$app"; do
	[ -x "$f" ] || { echo "coldstart: $f is missing; run make images first" >&2; exit 1; }
done
command -v hyperfine >/dev/null || { echo "coldstart: hyperfine is not installed" >&2; exit 1; }

docker image ls --format '{{.Repository}}:{{.Tag}} {{.Size}}' | grep -E '^(esdb-emulator|eventsourcing-grpc):latest '

# Each run starts a container and polls until it serves (at most 5 s).
poll() { echo "for i in \$(seq 500); do $1 >/dev/null 2>&1 && exit 0; sleep 0.01; done; exit 1"; }
hyperfine -N --warmup 2 --runs "$runs" \
	--prepare 'docker rm -f coldstart-app coldstart-emu' --cleanup 'docker rm -f coldstart-app coldstart-emu' \
	-n eventsourcing-grpc "bash -c 'docker run -d --name coldstart-app -p 127.0.0.1:22201:50051 \
		-e APPLICATION_TOPIC=orders.Orders -e ORDERS_GRPC_SERVER_ADDRESS=0.0.0.0:50051 -e GRPC_INSECURE=true \
		eventsourcing-grpc:latest >/dev/null && $(poll "GRPC_INSECURE=true $app health -timeout 1s 127.0.0.1:22201")'" \
	-n esdb-emulator "bash -c 'docker run -d --name coldstart-emu -p 127.0.0.1:22200:2113 esdb-emulator:latest >/dev/null \
		&& $(poll "$emu health -timeout 1s -addr 127.0.0.1:22200")'"
