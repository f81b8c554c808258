# Confab: one static Go binary on a distroless base, running as an
# unprivileged user, with its SQLite database on a volume at /data.
#
#   docker build -t confab --build-arg REVISION=$(git rev-parse HEAD) .
#   docker run -p 8000:8000 -v confab-data:/data confab
#
# app/systemtest builds the binary with exactly the flags of the go build
# line below, and checks the ports, paths and user declared here.

# The same Go as go.mod's go line (the image sets GOTOOLCHAIN=local).
FROM golang:1.26.8-bookworm AS build
WORKDIR /src
# Modules first, so this layer is reused until go.mod or go.sum change.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# REVISION is the commit shown by `confab version` (the build context has no .git).
ARG REVISION=""
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w -X main.revision=${REVISION}" -o /out/confab .
# The database folder, owned by the unprivileged user: a new Docker volume
# mounted on /data starts with this ownership.
RUN mkdir -p /out/data

# distroless/static: CA certificates, tzdata and /etc/passwd, no shell.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/confab /usr/local/bin/confab
COPY --from=build --chown=65532:65532 /out/data /data
# The process starts as root only to give /data to uid 65532 (Fly and
# Render mount volumes owned by root, which that user could not write),
# then becomes 65532 before it opens anything: the server never serves as
# root (RUN_AS, see docs/operations.md).
USER 0:0
ENV DATABASE_PATH=/data/confab.db \
    PORT=8000 \
    LOG_FORMAT=json \
    RUN_AS=65532:65532
VOLUME /data
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=5s --start-period=10s --retries=3 \
    CMD ["/usr/local/bin/confab", "healthcheck"]
# serve drains on SIGTERM within SHUTDOWN_TIMEOUT (10s by default): give
# `docker stop` more than that (docker stop -t 15, stop_grace_period: 15s).
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/confab"]
CMD ["serve"]
