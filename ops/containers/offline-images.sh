#!/usr/bin/env bash
# Stand-ins for the two public base images the containers use, for a machine whose Docker
# cannot pull from Docker Hub (this project's own machines reach only Debian's and npm's
# registries). Built from Debian packages and this machine's own programs:
#
#   archio-offline/node:20-bookworm-slim   Debian bookworm (debootstrap, minbase) + this machine's
#                                          node and npm, and a `node` user (uid 1000) as in the
#                                          official image; also this machine's CA bundle (as
#                                          NODE_EXTRA_CA_CERTS), so `npm ci` in a build trusts
#                                          the same TLS proxies the machine does
#   archio-offline/nats:2                  the same Debian + this machine's nats-server as
#                                          /nats-server, the official image's entry point
#
# Then: ARCHIO_NODE_IMAGE=archio-offline/node:20-bookworm-slim ARCHIO_NATS_IMAGE=archio-offline/nats:2 \
#       ops/containers/check.sh
# Needs root (debootstrap), docker, node 20 and nats-server; apt-get installs debootstrap.
set -euo pipefail

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

command -v debootstrap >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap
node_bin="$(command -v node)"
npm_dir="$(dirname "$(dirname "$(readlink -f "$(command -v npm)")")")"
nats_bin="$(command -v nats-server || echo /usr/sbin/nats-server)"
case "$("$node_bin" --version)" in v20.*|v2[1-9].*) ;; *) echo "offline-images.sh: needs node 20 or newer, got $("$node_bin" --version)" >&2; exit 1 ;; esac
[ -x "$nats_bin" ] || { echo "offline-images.sh: nats-server not found (apt-get install nats-server)" >&2; exit 1; }

if docker image inspect archio-offline/debian:bookworm >/dev/null 2>&1; then
  echo "--- archio-offline/debian:bookworm is there already (docker rmi it to make it anew)"
else
  echo "--- Debian bookworm (minbase) with debootstrap"
  debootstrap --variant=minbase bookworm "$work/rootfs" http://deb.debian.org/debian > "$work/debootstrap.log" 2>&1 \
    || { tail -20 "$work/debootstrap.log" >&2; exit 1; }
  tar -C "$work/rootfs" -c . | docker import - archio-offline/debian:bookworm
fi

echo "--- archio-offline/node:20-bookworm-slim ($("$node_bin" --version), npm from $npm_dir)"
mkdir -p "$work/node"
cp "$node_bin" "$work/node/node"
cp -r "$npm_dir" "$work/node/npm"
cp "${NODE_EXTRA_CA_CERTS:-/etc/ssl/certs/ca-certificates.crt}" "$work/node/ca.crt"
cat > "$work/node/Dockerfile" <<'DOCKERFILE'
FROM archio-offline/debian:bookworm
COPY node /usr/local/bin/node
COPY npm /usr/local/lib/node_modules/npm
COPY ca.crt /etc/ssl/certs/archio-offline-ca.crt
ENV NODE_EXTRA_CA_CERTS=/etc/ssl/certs/archio-offline-ca.crt
RUN ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm \
 && ln -s ../lib/node_modules/npm/bin/npx-cli.js /usr/local/bin/npx \
 && groupadd --gid 1000 node && useradd --uid 1000 --gid node --shell /bin/bash --create-home node
CMD ["node"]
DOCKERFILE
docker build -q -t archio-offline/node:20-bookworm-slim "$work/node"

echo "--- archio-offline/nats:2 ($("$nats_bin" --version))"
mkdir -p "$work/nats"
cp "$nats_bin" "$work/nats/nats-server"
cat > "$work/nats/Dockerfile" <<'DOCKERFILE'
FROM archio-offline/debian:bookworm
COPY nats-server /nats-server
EXPOSE 4222 8222 6222
ENTRYPOINT ["/nats-server"]
DOCKERFILE
docker build -q -t archio-offline/nats:2 "$work/nats"
docker images 'archio-offline/*'
