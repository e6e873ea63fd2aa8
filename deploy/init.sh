#!/bin/sh
# Run once by the prism-auth service of docker-compose.yml, in the prism
# image, with the prism-auth volume at /prism. It writes the development
# credentials (prism auth init: CA, certificates valid for the services'
# names, the callout and service keys, users admin and app), the PII key
# encryption key every Prism process shares, the cluster's route password
# and the NATS servers' accounts (prism auth server-config). Existing
# material is kept, so a restart issues nothing new.
set -eu
umask 077
# PRISM_AUTH_DIR is the volume's mount point (itest/compose_test.go runs
# this script against a temporary directory).
d=${PRISM_AUTH_DIR:-/prism}
if [ ! -f "$d/auth/auth.yaml" ]; then
  prism auth init --data-dir "$d" \
    --host nats-1 --host nats-2 --host nats-3 --host prism-1 --host prism-2 \
    --user admin:admins --user app
fi
[ -f "$d/kek.hex" ] || prism keys init-kek "$d/kek.hex"
if [ ! -f "$d/cluster-auth.conf" ]; then
  pw=$(head -c 24 /dev/urandom | base64 | tr -d '/+=')
  printf 'authorization { user: "route", password: "%s" }\n' "$pw" >"$d/cluster-auth.conf"
  printf 'routes: [\n  "nats://route:%s@nats-1:6222"\n  "nats://route:%s@nats-2:6222"\n  "nats://route:%s@nats-3:6222"\n]\n' "$pw" "$pw" "$pw" >"$d/cluster-routes.conf"
fi
prism auth server-config --auth-config "$d/auth/auth.yaml" --listen 0.0.0.0:4222 \
  --store-dir /data/jetstream >"$d/nats-server.conf"
echo "prism-auth: credentials in the prism-auth volume; see docs/compose.md"
