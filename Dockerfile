# syntax=docker/dockerfile:1
# Multi-stage build on the official Bun image of the version package.json pins (a test holds the two
# together): production dependencies in one stage, a slim non-root runtime in the other. Run with
# API_KEY_PEPPER, DATABASE_URL and REDIS_URL set.

FROM oven/bun:1.4.5 AS deps
WORKDIR /app
COPY package.json package-lock.json ./
COPY packages/client/package.json ./packages/client/
RUN bun install --production --ignore-scripts

FROM oven/bun:1.4.5-slim AS runtime
WORKDIR /app
ENV NODE_ENV=production \
    PORT=3000 \
    GRPC_PORT=50051 \
    DATA_DIR=/data
COPY --from=deps /app/node_modules ./node_modules
COPY package.json tsconfig.json ./
COPY gen ./gen
COPY src ./src
RUN mkdir -p /data && chown bun:bun /data
USER bun
EXPOSE 3000 50051
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
  CMD ["bun", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 3000) + '/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
STOPSIGNAL SIGTERM
CMD ["bun", "src/main.ts"]
