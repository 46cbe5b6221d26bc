#!/bin/sh
# Creates the Secrets the manifests mount, from the certificates of
#
#   eventsourcing-grpc ssl -dir ssl orders reservations payments orderssummary eventstoredb localhost
#
# and the EventStoreDB admin password (ESDB_ADMIN_PASSWORD, default changeit,
# the node's own default).
set -eu
SSL=${SSL:-ssl}
kubectl create secret generic root-ssl-secret --from-file=root.crt="$SSL/root/root.crt"
for app in orders reservations payments orderssummary eventstoredb; do
  kubectl create secret tls "$app-ssl-secret" --key "$SSL/$app/$app.key" --cert "$SSL/$app/$app.crt"
done
kubectl create secret generic eventstoredb-admin --from-literal=password="${ESDB_ADMIN_PASSWORD:-changeit}"
