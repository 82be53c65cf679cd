# One Archio node (`archio node`), configured by environment variables (README: Configuration,
# Containers). Build from the repository root:  docker build -t archio .
#
# Two stages: the first installs the production dependencies (classic-level loads its prebuilt
# linux-x64/arm64 glibc addon, so no compiler is needed) and bundles the TypeScript sources once
# with esbuild; the second copies the result onto a clean base and runs it as the unprivileged
# `node` user, with the database on the /data volume. No syntax directive on purpose: the file
# builds with the classic builder and BuildKit alike, without fetching a frontend image.

# The base, overridable for a mirror (--build-arg NODE_IMAGE=registry.example/node:20-bookworm-slim).
ARG NODE_IMAGE=node:20-bookworm-slim

FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force
COPY tsconfig.json ./
COPY bin ./bin
COPY protocol ./protocol
COPY actors ./actors
COPY bootstrap ./bootstrap
# bin/archio.js bundles the sources into dist/ on its first start; do it now, so the image
# starts from the bundle (the app folder is read-only to the node user at run time).
RUN node bin/archio.js node --help > /dev/null && test -f dist/archio.mjs

FROM ${NODE_IMAGE}
ENV NODE_ENV=production \
    CLUSTER=dev \
    NATS_URL=nats://nats:4222 \
    DATA_DIR=/data \
    HTTP_PORT=8080 \
    HTTP_HOST=0.0.0.0
WORKDIR /app
# Owned by root: the node process can read its code but not change it.
COPY --from=build /app /app
RUN mkdir -p /data && chown node:node /data
USER node
VOLUME ["/data"]
EXPOSE 8080
# 200 while the node knows a leader, 503 during an election or when cut off from a majority (a
# readiness signal: README, HTTP). Node's own fetch, so the slim image needs no curl.
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch(`http://127.0.0.1:${process.env.HTTP_PORT || 8080}/health`).then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# archio node stops cleanly on SIGTERM (leadership handed over, NATS drained, database closed).
STOPSIGNAL SIGTERM
ENTRYPOINT ["node", "/app/bin/archio.js"]
CMD ["node"]
