# The boxoffice image: the static binary and nothing else (no registry is
# reachable, so nothing is pulled: FROM scratch). `make image` builds it from
# a context holding just the binary and a CA bundle:
#
#   CGO_ENABLED=0 go build -o build/image/boxoffice ./cmd/boxoffice
#   docker build -f Dockerfile build/image
#
# What a scratch image lacks, and why the binary does not need it:
#   - libc: the binary is built with CGO_ENABLED=0 (pure-Go DNS resolver,
#     which reads the /etc/resolv.conf and /etc/hosts Docker mounts).
#   - time zones: every time is UTC or RFC 3339 with an offset; nothing calls
#     time.LoadLocation, and time.Local is UTC without /etc/localtime.
#   - CA certificates: needed only by --payment-gateway stripe (HTTPS); the
#     bundle is copied in from the build machine.
#   - a shell, users, /tmp: none is used; the node runs as root inside the
#     container so that it can write the volume mounted at /data.
FROM scratch
COPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY boxoffice /boxoffice
ENV BOXOFFICE_DATA_DIR=/data \
    BOXOFFICE_HTTP_ADDR=0.0.0.0:8080 \
    BOXOFFICE_RAFT_ADDR=0.0.0.0:9090
EXPOSE 8080 9090
ENTRYPOINT ["/boxoffice"]
CMD ["serve"]
