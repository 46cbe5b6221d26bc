#!/usr/bin/env bash
# End-to-end test of the orders system in docker-compose: Orders,
# Reservations, Payments and the OrdersSummary projection on EventStoreDB
# (the emulator's image), with mutual TLS, under container faults.
#
#   make e2e                 # or: bash docker/e2e.sh
#
# It builds the images (make images; E2E_BUILD=0 uses the ones there are,
# E2E_IMAGE_TAG=t builds and uses eventsourcing-grpc:t and esdb-emulator:t),
# issues certificates, brings the compose project up under a unique project
# name, places orders from this machine through the command over mutual
# TLS, and after the first batch and after each fault checks that every
# order was reserved and paid exactly once (the applications' notification
# logs), that the projection counts them exactly (CountCreated,
# CountReserved, CountPaid) and that every follower is back to "live"
# (status). The faults:
#
#   1. docker kill Reservations while orders are placed, then docker start;
#   2. docker restart EventStoreDB (SIGTERM, so the node saves its log)
#      while the followers process a batch on live subscriptions;
#   3. docker network disconnect Payments for 5 s while orders are placed;
#   4. the same, Payments coming back at another address (the connections
#      to its old one dead without being closed);
#   5. clients without a certificate, or with one of another CA, are refused.
#
# The project is always torn down (volumes included). Every wait is bounded,
# and the whole run is given E2E_DEADLINE seconds (default 540). The last
# line is the summary: "e2e: N orders, F faults, 0 lost, 0 duplicated".
set -euo pipefail
cd "$(dirname "$0")/.."

start=$SECONDS
deadline=$((start + ${E2E_DEADLINE:-540}))
project="e2e-$(date +%s)-$$"
work=$(mktemp -d "${TMPDIR:-/tmp}/eventsourcing-e2e.XXXXXX")
topic=eventsourcing_grpc.example
placed=0
detail=
faults=0

log() { printf 'e2e [%3ds] %s\n' $((SECONDS - start)) "$*"; }
fail() {
	log "FAILED: $*"
	exit 1
}

if docker compose version >/dev/null 2>&1; then
	compose=(docker compose)
else
	command -v docker-compose >/dev/null || fail "neither docker compose nor docker-compose is installed"
	compose=(docker-compose)
fi
compose+=(-p "$project" -f "$PWD/docker-compose.yml")
dc() { timeout 120 "${compose[@]}" "$@"; }

cleanup() {
	status=$?
	trap - EXIT INT TERM
	if [ "$status" -ne 0 ]; then
		log "the services' last log lines:"
		dc logs --no-color --tail 40 2>&1 | sed 's/^/  /' || true
		if [ -s "$work/placed.ids" ]; then
			placed=$(wc -l <"$work/placed.ids")
			tally && summary " (FAILED)" || true
		fi
	fi
	log "tearing down $project"
	[ -z "${placeholder:-}" ] || docker rm -f "$placeholder" >/dev/null 2>&1 || true
	dc down -v --remove-orphans -t 5 >/dev/null 2>&1 || log "docker compose down failed; remove the project $project by hand"
	rm -rf "$work"
	exit "$status"
}
trap cleanup EXIT
trap 'fail "interrupted"' INT TERM

# remaining prints the seconds left before the run's deadline, at most $1.
remaining() {
	local left=$((deadline - SECONDS))
	[ "$left" -gt 0 ] || fail "the run exceeded its deadline of ${E2E_DEADLINE:-540} s"
	if [ "$left" -gt "$1" ]; then echo "$1"; else echo "$left"; fi
}

# until_true SECONDS WHAT CMD...: run CMD every 0.5 s until it succeeds.
until_true() {
	local limit what
	limit=$(remaining "$1") what=$2
	shift 2
	local end=$((SECONDS + limit))
	until "$@"; do
		[ "$SECONDS" -lt "$end" ] || fail "$what: not so after ${limit} s${detail:+ ($detail)}"
		sleep 0.5
	done
}

# --- build -------------------------------------------------------------------

# ESDB_IMAGE (and ESDB_DATA, see docker-compose.yml) run another node.
tag=${E2E_IMAGE_TAG:-latest}
emulator="esdb-emulator:$tag"
export GRPC_IMAGE="eventsourcing-grpc:$tag" ESDB_IMAGE="${ESDB_IMAGE:-$emulator}"
if [ "${E2E_BUILD:-1}" != 0 ]; then
	log "building the images (make images IMAGE_TAG=$tag)"
	make --no-print-directory images IMAGE_TAG="$tag" >"$work/images.log" 2>&1 || {
		cat "$work/images.log"
		fail "make images"
	}
fi
for image in "$GRPC_IMAGE" "$emulator" "$ESDB_IMAGE"; do
	docker image inspect "$image" >/dev/null 2>&1 || fail "no image $image (run make images)"
done
bin="$work/eventsourcing-grpc"
go build -o "$bin" ./example/cmd/eventsourcing-grpc || fail "go build ./example/cmd/eventsourcing-grpc"

# Certificates: one per service and one for this machine's client (its
# name does not matter to the servers, only its CA); a second CA for the
# client that must be refused. The containers' user (65532) reads the keys.
"$bin" ssl -dir "$work/ssl" orders reservations payments orderssummary eventstoredb localhost >/dev/null
"$bin" ssl -dir "$work/other" localhost >/dev/null
chmod a+r "$work"/ssl/*/*.key
export GRPC_SSL_PRIVATE_KEY_PATH="$work/ssl/localhost/localhost.key"
export GRPC_SSL_CERTIFICATE_PATH="$work/ssl/localhost/localhost.crt"
export GRPC_SSL_ROOT_CERTIFICATE_PATH="$work/ssl/root/root.crt"

# --- up ----------------------------------------------------------------------

export SSL_DIR="$work/ssl"
export ORDERS_PORT=127.0.0.1: RESERVATIONS_PORT=127.0.0.1: PAYMENTS_PORT=127.0.0.1: ORDERSSUMMARY_PORT=127.0.0.1:
export ORDERS_METRICS_PORT=127.0.0.1: RESERVATIONS_METRICS_PORT=127.0.0.1: PAYMENTS_METRICS_PORT=127.0.0.1: ORDERSSUMMARY_METRICS_PORT=127.0.0.1:
log "starting project $project (${compose[*]:0:2})"
dc up -d >"$work/up.log" 2>&1 || {
	cat "$work/up.log"
	fail "docker compose up"
}

declare -A ports=([orders]=50051 [reservations]=50052 [payments]=50053 [orderssummary]=50054)
container() { dc ps -q "$1"; }
# addr SERVICE: the address the service's port is published on (a started
# container may get another port).
addr() {
	local a
	a=$(dc port "$1" "${ports[$1]}" 2>/dev/null | head -1)
	[ -n "$a" ] || return 1
	echo "$a"
}
healthy() { [ "$(docker inspect -f '{{.State.Health.Status}}' "$(container "$1")" 2>/dev/null)" = healthy ]; }
all_healthy() {
	local s
	for s in eventstoredb orders reservations payments orderssummary; do healthy "$s" || return 1; done
}
until_true 120 "every service is healthy" all_healthy
log "every service is healthy"

esg() { timeout 30 "$bin" "$@"; }

# --- orders and checks -------------------------------------------------------

# place N FILE: N orders, four calls at a time, their ids appended to FILE.
place() {
	local n=$1 file=$2 a
	a=$(addr orders) || fail "Orders has no published port"
	seq "$n" | xargs -P 4 -I{} timeout 30 "$bin" call -timeout 10s "$a" CreateNewOrder >>"$file" ||
		fail "placing $n orders: a call failed"
}

# count SERVICE TOPIC: how many notifications of TOPIC the service's log
# has, and how many distinct aggregates they are of ("lines distinct").
count() {
	local a
	a=$(addr "$1") || return 1
	esg notifications "$a" -topic "$topic:$2" -limit 1000 >"$work/n.json" || return 1
	echo "$(wc -l <"$work/n.json") $(sed -E 's/.*"originator_id":"([^"]*)".*/\1/' "$work/n.json" | sort -u | wc -l)"
}

# logs_done: every application's log has exactly one event per order of
# each kind (more than that is a duplicate, reported at once).
logs_done() {
	local pair kind svc got
	detail=
	for pair in orders:Order.Created orders:Order.Reserved orders:Order.Paid \
		reservations:Reservation.Created payments:Payment.Created; do
		svc=${pair%%:*} kind=${pair#*:}
		got=$(count "$svc" "$kind") || return 1
		read -r n distinct <<<"$got"
		[ "$distinct" -le "$placed" ] || fail "$kind: $distinct aggregates, but $placed orders were placed"
		[ "$n" -eq "$distinct" ] || fail "$kind: $n events for $distinct aggregates: duplicated"
		detail+="${detail:+, }$kind $n"
		[ "$n" -eq "$placed" ] || return 1
	done
	detail=
}

summary_done() {
	local a q v
	a=$(addr orderssummary) || return 1
	for q in CountCreated CountReserved CountPaid; do
		v=$(esg call "$a" "$q" 2>/dev/null) || return 1
		detail="$q $v"
		[ "$v" -le "$placed" ] || fail "$q says $v, but $placed orders were placed"
		[ "$v" -eq "$placed" ] || return 1
	done
}

# live SERVICE UPSTREAMS: the service's status shows that many upstreams,
# every one "live".
live() {
	local a out
	a=$(addr "$1") || return 1
	out=$(esg status "$a" 2>&1) || { detail="status $1: $(head -1 <<<"$out" | cut -c1-120)"; return 1; }
	detail="$1: $(grep ' upstream ' <<<"$out" | grep -o 'upstream [A-Za-z]* state "[a-z ]*"' | tr '\n' ' ')"
	[ "$(grep -c ' upstream ' <<<"$out")" -eq "$2" ] || return 1
	! grep ' upstream ' <<<"$out" | grep -qv 'state "live"'
}
all_live() { live orders 2 && live reservations 1 && live payments 1 && live orderssummary 1; }

# check WHAT: the exactly-once checks, bounded.
check() {
	detail=
	until_true 180 "$1: each of $placed orders created, reserved and paid once" logs_done
	# The ids returned to the calls are the orders that were paid.
	esg notifications "$(addr orders)" -topic "$topic:Order.Paid" -limit 1000 |
		sed -E 's/.*"originator_id":"([^"]*)".*/\1/' | sort >"$work/paid.ids"
	tr -d '"' <"$work/placed.ids" | sort >"$work/placed.sorted"
	cmp -s "$work/paid.ids" "$work/placed.sorted" || fail "$1: the paid orders are not the placed ones: $(comm -3 "$work/paid.ids" "$work/placed.sorted" | head -5 | tr '\n' ' ')"
	until_true 120 "$1: the projection counts $placed orders created, reserved and paid" summary_done
	until_true 120 "$1: every follower is live" all_live
	log "$1: $placed orders, each paid once; CountPaid $placed; every follower live"
}

# tally: how many placed orders have no Order.Paid (lost) and how many
# Order.Paid events are of an order paid before (duplicated).
lost=0 dup=0
tally() {
	local a
	a=$(addr orders) || return 1
	esg notifications "$a" -topic "$topic:Order.Paid" -limit 1000 >"$work/tally.json" 2>/dev/null || return 1
	sed -E 's/.*"originator_id":"([^"]*)".*/\1/' "$work/tally.json" | sort >"$work/tally.ids"
	tr -d '"' <"$work/placed.ids" | sort -u >"$work/tally.placed"
	lost=$(sort -u "$work/tally.ids" | comm -23 "$work/tally.placed" - | wc -l)
	dup=$(($(wc -l <"$work/tally.ids") - $(sort -u "$work/tally.ids" | wc -l)))
}
summary() { echo "e2e: $placed orders, $faults faults, $lost lost, $dup duplicated${1:-}"; }

: >"$work/placed.ids"
order_batch() {
	place "$1" "$work/placed.ids"
	placed=$(wc -l <"$work/placed.ids")
}

# in_background N: place N orders in the background; returns once the
# first 10 are placed, so that a fault lands mid-stream.
in_background() {
	local before
	before=$(wc -l <"$work/placed.ids")
	place "$1" "$work/placed.ids" &
	bg=$!
	until_true 60 "orders are being placed" placed_at_least $((before + 10))
}
placed_at_least() { [ "$(wc -l <"$work/placed.ids")" -ge "$1" ]; }
wait_background() {
	wait "$bg" || fail "placing orders in the background"
	placed=$(wc -l <"$work/placed.ids")
}

log "placing 100 orders"
order_batch 100
check "first batch"

# 1. Reservations killed while orders are placed, then started.
in_background 50
docker kill "$(container reservations)" >/dev/null
log "fault 1: killed reservations mid-stream"
sleep 2
# Status answers meanwhile (what it says depends on how far Orders got).
log "fault 1: $(esg status "$(addr orders)" 2>&1 | grep -o 'upstream Reservations state "[a-z ]*"' || echo "status of Orders did not answer")"
docker start "$(container reservations)" >/dev/null
wait_background
until_true 60 "reservations is healthy again" healthy reservations
faults=$((faults + 1))
check "fault 1 (reservations killed and started)"

# 2. EventStoreDB restarted while the followers process a batch. SIGTERM
# (the image's stop signal) makes the node save its log before it exits.
order_batch 50
log "fault 2: restarting eventstoredb under live subscriptions"
timeout 60 docker restart -t 20 "$(container eventstoredb)" >/dev/null
until_true 60 "eventstoredb is healthy again" healthy eventstoredb
# Orders reconnects to the node on its next call: wait until it reads.
first=$(head -1 "$work/placed.ids" | tr -d '"')
until_true 60 "Orders reads from the restarted node" esg call "$(addr orders)" GetOrder "$first" >/dev/null
order_batch 25
faults=$((faults + 1))
check "fault 2 (eventstoredb restarted)"

# 3. Payments cut off the network for 5 s while orders are placed: once
# back at its address (the connections to it carry on), once at another
# one, its old address taken meanwhile by a placeholder container that
# then goes away, so that the connections to the old one are dead without
# being closed (as after a partition, or a pod that came back elsewhere).
net="${project}_default"
payments=$(container payments)
ip_of() { docker inspect -f "{{(index .NetworkSettings.Networks \"$net\").IPAddress}}" "$1"; }
in_background 50
old_ip=$(ip_of "$payments")
docker network disconnect "$net" "$payments"
log "fault 3: payments ($old_ip) disconnected from the network"
sleep 5
docker network connect --alias payments "$net" "$payments"
log "fault 3: payments reconnected at $(ip_of "$payments")"
wait_background
faults=$((faults + 1))
check "fault 3 (payments disconnected for 5 s)"

in_background 50
old_ip=$(ip_of "$payments")
docker network disconnect "$net" "$payments"
log "fault 4: payments ($old_ip) disconnected from the network"
placeholder=$(docker run -d --rm --network "$net" -e EVENTSTORE_MEM_DB=true --label "e2e=$project" "$emulator")
sleep 5
docker network connect --alias payments "$net" "$payments"
docker rm -f "$placeholder" >/dev/null
placeholder=
new_ip=$(ip_of "$payments")
log "fault 4: payments reconnected at $new_ip; nothing answers at $old_ip"
[ "$new_ip" != "$old_ip" ] || log "fault 4: the engine gave payments its old address back: the connections to it carry on"
wait_background
faults=$((faults + 1))
check "fault 4 (payments disconnected for 5 s, back at another address)"

# 5. Clients without a certificate, or with one of another CA, are refused;
# the system serves on.
refused() {
	local what=$1
	shift
	if "$@" >"$work/refused.out" 2>&1; then
		fail "fault 5: $what was served: $(head -3 "$work/refused.out")"
	fi
	log "fault 5: $what refused: $(head -1 "$work/refused.out" | sed -E 's/.*desc = //' | cut -c1-160)"
}
a=$(addr orders)
# The same call with this machine's certificate is served.
esg call "$a" GetOrder "$first" >/dev/null || fail "fault 5: Orders does not serve a client with this CA's certificate"
refused "a plaintext client" env -u GRPC_SSL_PRIVATE_KEY_PATH -u GRPC_SSL_CERTIFICATE_PATH -u GRPC_SSL_ROOT_CERTIFICATE_PATH \
	GRPC_INSECURE=true timeout 30 "$bin" call -timeout 5s "$a" CreateNewOrder
refused "a client with a certificate of another CA" env GRPC_SSL_PRIVATE_KEY_PATH="$work/other/localhost/localhost.key" \
	GRPC_SSL_CERTIFICATE_PATH="$work/other/localhost/localhost.crt" timeout 30 "$bin" call -timeout 5s "$a" CreateNewOrder
if command -v curl >/dev/null; then
	# TLS that trusts the server but presents no certificate, or one of
	# another CA: the server ends the handshake; with ours it answers HTTP/2.
	url="https://$a/"
	curl -sS --http2 --max-time 10 --cacert "$GRPC_SSL_ROOT_CERTIFICATE_PATH" --cert "$GRPC_SSL_CERTIFICATE_PATH" \
		--key "$GRPC_SSL_PRIVATE_KEY_PATH" -o /dev/null "$url" || fail "fault 5: curl with this CA's certificate was refused"
	refused "a TLS client without a certificate" curl -sS --http2 --max-time 10 --cacert "$GRPC_SSL_ROOT_CERTIFICATE_PATH" -o /dev/null "$url"
	refused "a TLS client with a certificate of another CA" curl -sS --http2 --max-time 10 --cacert "$GRPC_SSL_ROOT_CERTIFICATE_PATH" \
		--cert "$work/other/localhost/localhost.crt" --key "$work/other/localhost/localhost.key" -o /dev/null "$url"
fi
order_batch 25
faults=$((faults + 1))
check "fault 5 (clients without a certificate or of another CA refused)"

tally || fail "reading the paid orders"
[ "$lost" -eq 0 ] && [ "$dup" -eq 0 ] || fail "$lost lost, $dup duplicated"
log "passed in $((SECONDS - start)) s"
summary
