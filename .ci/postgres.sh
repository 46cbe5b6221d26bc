#!/usr/bin/env bash
# Brings up a PostgreSQL server for the test suite and prints the settings the
# tests read, as shell lines:
#
#   eval "$(bash .ci/postgres.sh)"          # in .ci/run or a developer shell
#   bash .ci/postgres.sh --env-file FILE    # also writes the lines to FILE
#
# It is idempotent and meant for a Debian machine where we are root (or may
# sudo): it installs Debian's postgresql package when the server is missing,
# creates a cluster of its own (named PG_CI_CLUSTER) when there is none,
# starts it with pg_ctlcluster (the server refuses to run as root; Debian's
# wrappers run it as user postgres), listening on 127.0.0.1 only, then
# creates the role and the database. It never starts, stops or changes any
# other cluster, so it is safe on a shared machine whose clusters belong to
# others. Progress goes to stderr so that stdout carries nothing but the
# export lines.
#
# Settings (environment, all optional):
#   PG_CI_USER      role to create            (default eventsourcing)
#   PG_CI_PASSWORD  its password              (default eventsourcing)
#   PG_CI_DBNAME    database to create        (default eventsourcing)
#   PG_CI_CLUSTER   the cluster this script owns (default eventsourcing-ci)
#   PG_CI_PORT      its port                  (default: the cluster's own once
#                   created; for a new cluster, the first free port from 5432,
#                   as pg_createcluster picks it)
set -euo pipefail

user=${PG_CI_USER:-eventsourcing}
cluster=${PG_CI_CLUSTER:-eventsourcing-ci}
password=${PG_CI_PASSWORD:-eventsourcing}
dbname=${PG_CI_DBNAME:-eventsourcing}
env_file=
while [ $# -gt 0 ]; do
	case $1 in
	--env-file) env_file=${2:?--env-file needs a path}; shift 2 ;;
	--env-file=*) env_file=${1#--env-file=}; shift ;;
	*) echo "postgres.sh: unknown argument $1" >&2; exit 2 ;;
	esac
done

log() { echo "postgres.sh: $*" >&2; }

as_root() {
	if [ "$(id -u)" = 0 ]; then "$@"; else sudo -n "$@"; fi
}

# The names are checked because they are spliced into SQL and shell lines below.
for v in "$user" "$dbname"; do
	[[ $v =~ ^[a-z_][a-z0-9_]*$ ]] || { log "invalid identifier '$v'"; exit 2; }
done
[[ $cluster =~ ^[a-zA-Z0-9_][a-zA-Z0-9_.-]*$ ]] || { log "invalid cluster name '$cluster'"; exit 2; }
[[ -z ${PG_CI_PORT:-} || ( $PG_CI_PORT =~ ^[0-9]+$ && $PG_CI_PORT -ge 1 && $PG_CI_PORT -le 65535 ) ]] \
	|| { log "PG_CI_PORT=$PG_CI_PORT is not a port number"; exit 2; }
[[ $password != *"'"* ]] || { log "the password must not contain a quote"; exit 2; }

# 1. Install. pg_ctlcluster comes with postgresql-common; the server binaries
# live under /usr/lib/postgresql/<version>/bin.
if ! command -v pg_ctlcluster >/dev/null 2>&1 || ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then
	log "installing PostgreSQL from Debian's packages"
	export DEBIAN_FRONTEND=noninteractive
	as_root apt-get update -qq >&2
	as_root apt-get install -y -qq postgresql >&2
fi

version=$(ls -1 /usr/lib/postgresql | sort -V | tail -n 1)
[ -x "/usr/lib/postgresql/$version/bin/postgres" ] || { log "no server binaries under /usr/lib/postgresql/$version"; exit 1; }

# 2. Our own cluster, of the newest version: created when missing, on
# PG_CI_PORT when given (which another server must not be listening on).
# Other clusters are never touched.
port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
if ! pg_lsclusters -h 2>/dev/null | awk -v v="$version" -v c="$cluster" '$1 == v && $2 == c { found = 1 } END { exit !found }'; then
	if [ -n "${PG_CI_PORT:-}" ] && port_in_use "$PG_CI_PORT"; then
		log "port $PG_CI_PORT is taken by another server; set PG_CI_PORT to a free port"
		exit 1
	fi
	log "creating cluster $version/$cluster"
	as_root pg_createcluster "$version" "$cluster" ${PG_CI_PORT:+--port "$PG_CI_PORT"} >&2
fi
port=$(pg_lsclusters -h | awk -v v="$version" -v c="$cluster" '$1 == v && $2 == c { print $3 }')
status=$(pg_lsclusters -h | awk -v v="$version" -v c="$cluster" '$1 == v && $2 == c { print $4 }')
if [ -n "${PG_CI_PORT:-}" ] && [ "$port" != "$PG_CI_PORT" ]; then
	log "cluster $version/$cluster exists on port $port, not PG_CI_PORT=$PG_CI_PORT: unset PG_CI_PORT, or choose another PG_CI_CLUSTER"
	exit 1
fi
if [ "$status" != online ] && port_in_use "$port"; then
	log "cluster $version/$cluster is down and another server listens on its port $port; set PG_CI_CLUSTER and PG_CI_PORT to use another"
	exit 1
fi

# 3. Start it on loopback. A machine that was stopped uncleanly can leave a
# postmaster.pid whose process is gone (or whose pid now belongs to another
# process, which the server mistakes for a running postmaster): remove it and
# try once more.
if [ "$status" != online ]; then
	log "starting cluster $version/$cluster on 127.0.0.1:$port"
	datadir=$(pg_lsclusters -h | awk -v v="$version" -v c="$cluster" '$1 == v && $2 == c { print $6 }')
	if ! as_root pg_ctlcluster "$version" "$cluster" start -- -o "-c listen_addresses=127.0.0.1" >&2; then
		log "start failed; removing a stale postmaster.pid and retrying"
		as_root rm -f "$datadir/postmaster.pid"
		as_root pg_ctlcluster "$version" "$cluster" start -- -o "-c listen_addresses=127.0.0.1" >&2
	fi
fi

for _ in $(seq 1 60); do
	if pg_isready -q -h 127.0.0.1 -p "$port"; then break; fi
	sleep 1
done
pg_isready -q -h 127.0.0.1 -p "$port" || { log "server not ready on 127.0.0.1:$port after 60 s"; exit 1; }

# 4. Role and database, through the local socket as the postgres superuser.
psql_super() { as_root runuser -u postgres -- psql -X -q -v ON_ERROR_STOP=1 -p "$port" -d postgres "$@"; }
if [ "$(psql_super -tAc "SELECT 1 FROM pg_roles WHERE rolname = '$user'")" != 1 ]; then
	log "creating role $user"
	psql_super -c "CREATE ROLE $user LOGIN PASSWORD '$password'" >&2
else
	# Keep the password in step with what we print, in case it changed.
	psql_super -c "ALTER ROLE $user LOGIN PASSWORD '$password'" >&2
fi
if [ "$(psql_super -tAc "SELECT 1 FROM pg_database WHERE datname = '$dbname'")" != 1 ]; then
	log "creating database $dbname"
	psql_super -c "CREATE DATABASE $dbname OWNER $user" >&2
fi

# 5. Check the settings work over TCP with the password, as the tests connect.
PGPASSWORD=$password psql -X -q -h 127.0.0.1 -p "$port" -U "$user" -d "$dbname" -tAc 'SELECT 1' >/dev/null \
	|| { log "cannot log in as $user over TCP"; exit 1; }

out="export POSTGRES_HOST=127.0.0.1
export POSTGRES_PORT=$port
export POSTGRES_USER=$user
export POSTGRES_PASSWORD=$password
export POSTGRES_DBNAME=$dbname"
if [ -n "$env_file" ]; then
	printf '%s\n' "$out" >"$env_file"
fi
printf '%s\n' "$out"
log "PostgreSQL $version ready on 127.0.0.1:$port (database $dbname, role $user)"
