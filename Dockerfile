# noray connectivity server. Build: docker build -t noray .   Run: see docker-compose.yml and docs/deploy.md.
# test/docker.test.ts checks this file against the option table (every EXPOSEd port is a default).

# --- build: the dev dependencies (TypeScript) compile src/ into dist/ ---
FROM node:20-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
# No install scripts (package.json allowScripts turns off esbuild's and bufferutil's anyway):
# bufferutil ships prebuilt binaries, esbuild is only used by tsx, never by the build.
RUN npm ci --ignore-scripts
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

# --- runtime: the runtime dependencies and dist/, nothing else ---
FROM node:20-slim
WORKDIR /app
ENV NODE_ENV=production
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts && npm cache clean --force
COPY --from=build /app/dist ./dist
# The image's unprivileged user; every default port is above 1024, so no capability is needed.
USER node
# Defaults of the option table: noray control (TCP), registrar (UDP), relay range (UDP), lobby
# HTTP+WS (TCP) and mediation (UDP), wsrelay (TCP), tcprelay (TCP), ops /health and /metrics (TCP).
EXPOSE 8890/tcp 8809/udp 49152-51200/udp 5980/tcp 5990/udp 8080/tcp 5300/tcp 8891/tcp
# node itself (slim has no curl). /health answers {"status":"ok"} without NORAY_OPS_TOKEN too.
# Change the port here if NORAY_HTTP_PORT is changed.
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:8891/health').then((r) => process.exit(r.ok ? 0 : 1)).catch(() => process.exit(1))"]
# The bin itself as PID 1, no npm or shell in between: SIGTERM from `docker stop` reaches noray,
# which drains and exits 0 (it installs its own handlers, so PID 1's signal rules do not matter).
STOPSIGNAL SIGTERM
CMD ["node", "dist/bin/noray.js"]
