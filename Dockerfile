# dockward as a container image. Nothing is pulled: the image starts FROM
# scratch and takes the static binary built beforehand by `make build`
# (CGO_ENABLED=0). `make image` runs both steps.
#
# Run it with the Docker socket read-only, the host's / read-only at /host,
# the host PID and network namespaces (kernel audit only talks to the
# initial namespaces) and the audit capabilities:
#   docker run -d --name dockward --restart unless-stopped \
#     -v /var/run/docker.sock:/var/run/docker.sock:ro -v /:/host:ro,rslave \
#     --pid host --network host --read-only \
#     --cap-drop ALL --cap-add AUDIT_CONTROL --cap-add AUDIT_READ --cap-add DAC_READ_SEARCH \
#     dockward/dockward
FROM scratch

LABEL org.opencontainers.image.title="dockward" \
      org.opencontainers.image.description="Docker host security agent: CIS Docker Benchmark checks and audit of Docker's files, as Prometheus metrics" \
      org.opencontainers.image.source="https://github.com/dockward/dockward"

COPY bin/dockward /bin/dockward
# The host's / is expected at /host (read-only); see the file for why.
COPY deploy/container/config.yml /etc/dockward/config.yml

# Root inside the container: the Docker socket is root:docker 0660 and the
# docker group's ID differs per host. Capabilities are what limit it; run
# with --cap-drop ALL and add back only the audit ones.
USER 0:0
EXPOSE 9917
ENTRYPOINT ["/bin/dockward"]
CMD ["--web.listen-address=:9917", "--config.file=/etc/dockward/config.yml"]
