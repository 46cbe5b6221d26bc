#!/bin/sh
# Creates the Secrets the manifests mount, from `eventsourcing-grpc ssl -dir ssl`.
set -eu
SSL=${SSL:-ssl}
kubectl create secret generic root-ssl-secret --from-file=root.crt="$SSL/root/root.crt"
for app in orders reservations payments; do
  kubectl create secret tls "$app-ssl-secret" --key "$SSL/$app/$app.key" --cert "$SSL/$app/$app.crt"
done
