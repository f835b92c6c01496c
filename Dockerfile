# sonde's container image: the static binary and the few files it reads,
# FROM scratch. The build context is not the repository but the directory
# `make image-context` assembles (.cache/image, packaging/image/), with a
# binary for each platform, so nothing is pulled and nothing runs in the
# build. `make image` builds it with buildah or podman; with docker:
#   make image-context IMAGE_ARCHS="amd64 arm64"
#   docker buildx build --platform linux/amd64,linux/arm64 -f Dockerfile .cache/image
# docs/container.md says what is in it and how to run it.
FROM scratch

# Set by the builder from --platform; they name the binary to take.
ARG TARGETOS
ARG TARGETARCH
ARG TARGETVARIANT

# Set by `make image`: VERSION, the commit and its time (RFC 3339).
ARG VERSION=""
ARG REVISION=""
ARG CREATED=""
ARG SOURCE="https://github.com/sonde-exporter/sonde"

LABEL org.opencontainers.image.title="sonde" \
      org.opencontainers.image.description="Prometheus probing exporter, a drop-in replacement for blackbox_exporter" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.url="${SOURCE}" \
      org.opencontainers.image.licenses="Apache-2.0"

# /etc/passwd and /etc/group (nobody), the CA certificates, the time zones,
# and the example configuration at /etc/blackbox_exporter/config.yml with
# /etc/sonde/config.yml linking to it.
COPY rootfs/ /
COPY bin/${TARGETOS}-${TARGETARCH}${TARGETVARIANT}/sonde /bin/sonde

# nobody, by number: Kubernetes' runAsNonRoot can check only a numeric user.
USER 65534:65534
EXPOSE 9115
ENTRYPOINT ["/bin/sonde"]
CMD ["--config.file=/etc/sonde/config.yml"]
