#!/usr/bin/env bash
# Builds the node image and starts ops/compose.yml (three nodes + nats-server) as the compose
# project `archio-check`, then checks it end to end:
#   1. every node's /health answers 200 (a leader is known) and Docker calls every node healthy
#      (the image's HEALTHCHECK);
#   2. a key written through n1's HTTP shim reads back from n3 (replicated over NATS);
#   3. `stop` (SIGTERM) ends every node with exit code 0 (a clean shutdown), and after `down`
#      and `up` (volumes kept) the key is still there (data on the /data volumes).
# Removes the project and its volumes at the end, pass or fail. Exits 0 when all held.
#
#   ops/containers/check.sh
#   ARCHIO_NODE_IMAGE=archio-offline/node:20-bookworm-slim ARCHIO_NATS_IMAGE=archio-offline/nats:2 \
#     ops/containers/check.sh        # without Docker Hub: see offline-images.sh
#
# Host ports: ARCHIO_NATS_PORT (default 14222) and ARCHIO_N1_HTTP_PORT..N3 (18081-18083), away
# from a NATS server or `archio dev` already on the usual ones. Needs docker with the compose
# plugin, or docker-compose 1.27+, and curl.
set -euo pipefail

cd "$(dirname "$0")/../.."
export ARCHIO_NATS_PORT="${ARCHIO_NATS_PORT:-14222}"
export ARCHIO_N1_HTTP_PORT="${ARCHIO_N1_HTTP_PORT:-18081}"
export ARCHIO_N2_HTTP_PORT="${ARCHIO_N2_HTTP_PORT:-18082}"
export ARCHIO_N3_HTTP_PORT="${ARCHIO_N3_HTTP_PORT:-18083}"
ports=("$ARCHIO_N1_HTTP_PORT" "$ARCHIO_N2_HTTP_PORT" "$ARCHIO_N3_HTTP_PORT")

if docker compose version >/dev/null 2>&1; then
  compose=(docker compose)
elif command -v docker-compose >/dev/null 2>&1; then
  compose=(docker-compose)
else
  echo "check.sh: neither 'docker compose' nor docker-compose is installed" >&2
  exit 1
fi
compose+=(-p archio-check -f ops/compose.yml)

fail() {
  echo "check.sh: FAILED: $*" >&2
  "${compose[@]}" ps >&2 || true
  "${compose[@]}" logs --tail 40 >&2 || true
  exit 1
}
trap '"${compose[@]}" down -v --remove-orphans >/dev/null 2>&1 || true' EXIT

# Waits until every node's /health answers 200 and Docker's health check agrees.
wait_healthy() {
  local deadline=$((SECONDS + 120))
  for i in 1 2 3; do
    until curl -fsS "http://127.0.0.1:${ports[$((i - 1))]}/health" >/dev/null 2>&1; do
      [ "$SECONDS" -lt "$deadline" ] || fail "n$i: /health did not answer 200 within 120 s"
      sleep 1
    done
    echo "n$i /health: $(curl -fsS "http://127.0.0.1:${ports[$((i - 1))]}/health")"
  done
  for i in 1 2 3; do
    local id
    id="$("${compose[@]}" ps -q "n$i")"
    until [ "$(docker inspect -f '{{.State.Health.Status}}' "$id")" = healthy ]; do
      [ "$SECONDS" -lt "$deadline" ] || fail "n$i: Docker's health check says $(docker inspect -f '{{.State.Health.Status}}' "$id")"
      sleep 1
    done
    echo "n$i: Docker health check: healthy, user $(docker exec "$id" id -un)"
  done
}

echo "--- build and start (${compose[*]})"
"${compose[@]}" up -d --build || fail "compose up"
wait_healthy

echo "--- write on n1, read on n3"
value="from-container-check-$RANDOM"
curl -fsS -X PUT "http://127.0.0.1:${ports[0]}/set" -d "{\"key\":\"check/containers\",\"value\":\"$value\"}" || fail "PUT /set on n1"
echo
got="$(curl -fsS "http://127.0.0.1:${ports[2]}/get?key=check/containers")" || fail "GET /get on n3"
echo "$got"
case "$got" in *"\"value\":\"$value\""*) ;; *) fail "n3 answered $got, expected the value $value" ;; esac

echo "--- stop (SIGTERM), down and up again: each node exits 0 and the data stays on the volumes"
ids=()
for i in 1 2 3; do ids+=("$("${compose[@]}" ps -q "n$i")"); done
"${compose[@]}" stop || fail "compose stop"
for i in 1 2 3; do
  code="$(docker inspect -f '{{.State.ExitCode}}' "${ids[$((i - 1))]}")"
  [ "$code" = 0 ] || fail "n$i exited $code on SIGTERM, expected a clean stop (0)"
  echo "n$i: stopped with exit code 0; $(docker logs --tail 1 "${ids[$((i - 1))]}" 2>&1)"
done
"${compose[@]}" down || fail "compose down"
"${compose[@]}" up -d || fail "compose up (again)"
wait_healthy
got="$(curl -fsS "http://127.0.0.1:${ports[1]}/get?key=check/containers")" || fail "GET /get on n2 after the restart"
echo "$got"
case "$got" in *"\"value\":\"$value\""*) ;; *) fail "after the restart n2 answered $got, expected the value $value" ;; esac

echo "--- containers: all checks passed"
