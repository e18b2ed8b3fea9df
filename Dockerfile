# aza-pg images, all from Debian packages. One file, several targets:
#
#   postgres            PostgreSQL ${PG_MAJOR} + the extension catalog (incl. pgBackRest) + the aza-pg entrypoint (default)
#   pgbouncer           Debian's PgBouncer + the aza-pg entrypoint
#   postgres-exporter   prometheus-postgres-exporter, started by the aza-pg launcher
#   pgbouncer-exporter  prometheus-pgbouncer-exporter, started by the aza-pg launcher
#   prometheus          Prometheus (the monitoring example)
#
#   docker build --target postgres -t aza-pg/postgres:17 .      (scripts/docker/build-images.sh builds all)
#
# Build arguments: BASE_IMAGE (default debian:trixie-slim), PG_MAJOR (default 17, from Debian's archive),
# INSTALL_EXTENSIONS (1 = the packages listed in image/packages/extensions.txt, 0 = contrib only, for
# variants such as BASE_IMAGE=debian:bookworm-slim PG_MAJOR=15), PG_UID / PG_GID (999).
# Only the classic Dockerfile syntax is used, so the legacy builder and BuildKit both build it.
# Layer order: slow package installs first, image metadata next, our own code last, so an entrypoint
# change rebuilds a few small COPY layers per image.

ARG BASE_IMAGE=debian:trixie-slim

# ---------------------------------------------------------------------------------------------------
# Shared runtime: Debian's Python with the entrypoint's dependencies, and the `postgres` account.
FROM ${BASE_IMAGE} AS runtime
ARG PG_UID=999
ARG PG_GID=999
ARG DEBIAN_FRONTEND=noninteractive
ENV LANG=C.UTF-8
# A fixed uid/gid keeps volume ownership stable across rebuilds and between the postgres and pgbouncer
# images. Debian's packages find the account already there and reuse it.
RUN set -eux; \
    groupadd --system --gid "${PG_GID}" postgres; \
    useradd --system --uid "${PG_UID}" --gid postgres --home-dir /var/lib/postgresql --no-create-home \
        --shell /bin/bash --comment "PostgreSQL administrator" postgres; \
    mkdir -p /var/lib/postgresql; \
    chown postgres:postgres /var/lib/postgresql; \
    printf 'APT::Install-Recommends "false";\nAPT::Install-Suggests "false";\n' \
        > /etc/apt/apt.conf.d/90aza-pg-no-recommends; \
    apt-get update; \
    apt-get install -y python3 python3-psutil python3-psycopg python3-click python3-structlog; \
    apt-get clean; \
    rm -rf /var/lib/apt/lists/* /var/cache/apt/* /var/log/apt/* /var/log/dpkg.log

# ---------------------------------------------------------------------------------------------------
# Our code, prepared once and copied into each image as the last layer:
#   /out/app      -> /   the entrypoint package in /usr/lib/aza-pg (byte-compiled, with a minimal
#                        .dist-info so `aza-pg --version` works without pip) and the launcher
#                        /usr/local/bin/aza-pg
#   /out/pg       -> /   postgres image only: /usr/share/aza-pg (extensions.json and other image data)
#                        and /usr/local/bin/pgbackrest (runs pgBackRest as postgres when started as root)
#   /out/exporters -> /etc/aza-pg/exporters (exporter images: queries and settings)
# The build context is an allowlist (.dockerignore): image/, entrypoint/, pyproject.toml.
FROM runtime AS app
COPY . /tmp/src/
RUN set -eux; \
    cd /tmp/src; \
    mkdir -p /out/app/usr/lib/aza-pg /out/app/usr/local/bin /out/pg/usr/share/aza-pg /out/pg/usr/local/bin \
        /out/exporters; \
    cp -a entrypoint /out/app/usr/lib/aza-pg/; \
    find /out/app/usr/lib/aza-pg -name __pycache__ -prune -exec rm -rf {} +; \
    python3 image/install-entrypoint.py pyproject.toml /out/app/usr/lib/aza-pg; \
    install -m 0755 image/aza-pg /out/app/usr/local/bin/aza-pg; \
    cp -a image/. /out/pg/usr/share/aza-pg/; \
    (cd /out/pg/usr/share/aza-pg && rm -rf aza-pg install-entrypoint.py packages exporters backup); \
    if [ -f image/backup/pgbackrest ]; then install -m 0755 image/backup/pgbackrest /out/pg/usr/local/bin/pgbackrest; fi; \
    if [ -d image/exporters ]; then cp -a image/exporters/. /out/exporters/; fi; \
    chown -R root:root /out; \
    chmod -R u=rwX,go=rX /out; \
    python3 -m compileall -q /out/app/usr/lib/aza-pg; \
    PYTHONPATH=/out/app/usr/lib/aza-pg python3 -m entrypoint --version; \
    rm -rf /tmp/src

# ---------------------------------------------------------------------------------------------------
# PgBouncer.
FROM runtime AS pgbouncer
ARG DEBIAN_FRONTEND=noninteractive
RUN set -eux; \
    apt-get update; \
    apt-get install -y pgbouncer; \
    apt-get clean; \
    rm -rf /var/lib/apt/lists/* /var/cache/apt/* /var/log/apt/* /var/log/dpkg.log; \
    # The entrypoint renders its own configuration; a packaged pgbouncer.ini would be mistaken for a
    # user-mounted one, and the packaged self-signed key must not be shared by every container.
    rm -f /etc/pgbouncer/pgbouncer.ini /etc/pgbouncer/userlist.txt \
        /etc/ssl/private/ssl-cert-snakeoil.key /etc/ssl/certs/ssl-cert-snakeoil.pem; \
    install -d -o postgres -g postgres -m 2775 /var/run/postgresql; \
    pgbouncer --version
EXPOSE 6432
STOPSIGNAL SIGINT
ENTRYPOINT ["aza-pg", "pgbouncer"]
CMD []
COPY --from=app /out/app/ /

# ---------------------------------------------------------------------------------------------------
# The exporters: trixie's static Go binaries, started by the aza-pg launcher (it renders a 0600 passfile
# so no password reaches the exporter's argv or environment), as the unprivileged `nobody`.
FROM ${BASE_IMAGE} AS exporter-packages
ARG DEBIAN_FRONTEND=noninteractive
RUN set -eux; \
    apt-get update; \
    apt-get install -y --no-install-recommends prometheus-postgres-exporter prometheus-pgbouncer-exporter; \
    /usr/bin/prometheus-postgres-exporter --version; \
    /usr/bin/prometheus-pgbouncer-exporter --version

FROM runtime AS postgres-exporter
COPY --from=exporter-packages /usr/bin/prometheus-postgres-exporter /usr/bin/prometheus-postgres-exporter
USER 65534:65534
EXPOSE 9187
ENTRYPOINT ["aza-pg", "postgres-exporter"]
CMD []
COPY --from=app /out/exporters/ /etc/aza-pg/exporters/
COPY --from=app /out/app/ /

FROM runtime AS pgbouncer-exporter
COPY --from=exporter-packages /usr/bin/prometheus-pgbouncer-exporter /usr/bin/prometheus-pgbouncer-exporter
USER 65534:65534
EXPOSE 9127
ENTRYPOINT ["aza-pg", "pgbouncer-exporter"]
CMD []
COPY --from=app /out/app/ /

# ---------------------------------------------------------------------------------------------------
# Prometheus for the monitoring example (examples/prometheus mounts prometheus.yml and rules/ over
# /etc/prometheus/).
FROM ${BASE_IMAGE} AS prometheus
ARG DEBIAN_FRONTEND=noninteractive
RUN set -eux; \
    apt-get update; \
    apt-get install -y --no-install-recommends prometheus; \
    apt-get clean; \
    rm -rf /var/lib/apt/lists/* /var/cache/apt/* /var/log/apt/* /var/log/dpkg.log; \
    install -d -o prometheus -g prometheus -m 0755 /prometheus; \
    prometheus --version
USER prometheus
WORKDIR /prometheus
EXPOSE 9090
ENTRYPOINT ["/usr/bin/prometheus"]
CMD ["--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus", \
     "--web.listen-address=:9090", "--web.enable-lifecycle"]

# ---------------------------------------------------------------------------------------------------
# PostgreSQL (the default target: last in the file).
FROM runtime AS postgres
ARG PG_MAJOR=17
ARG INSTALL_EXTENSIONS=1
ARG DEBIAN_FRONTEND=noninteractive
ENV PG_MAJOR=${PG_MAJOR} \
    PGDATA=/var/lib/postgresql/data \
    PATH=/usr/lib/postgresql/${PG_MAJOR}/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
RUN set -eux; \
    apt-get update; \
    # postgresql-common first, told not to create the packaged "main" cluster: the entrypoint owns
    # PGDATA and no stray cluster (or its config under /etc/postgresql/N/main) may exist in the image.
    apt-get install -y postgresql-common; \
    mkdir -p /etc/postgresql-common/createcluster.d; \
    echo 'create_main_cluster = false' > /etc/postgresql-common/createcluster.d/10-aza-pg-no-main-cluster.conf; \
    apt-get install -y "postgresql-${PG_MAJOR}"; \
    apt-get clean; \
    rm -rf /var/lib/apt/lists/* /var/cache/apt/* /var/log/apt/* /var/log/dpkg.log; \
    test ! -e "/etc/postgresql/${PG_MAJOR}/main"; \
    postgres --version
# The extension catalog in its own layer (generated from manifest.yaml: one Debian package a line), so
# changing the catalog rebuilds only from here.
COPY image/packages/extensions.txt /tmp/aza-pg-extensions.txt
RUN set -eux; \
    extensions=""; \
    if [ "${INSTALL_EXTENSIONS}" = 1 ]; then \
        extensions="$(sed -e 's/#.*//' -e 's/[[:space:]]//g' /tmp/aza-pg-extensions.txt | grep -v '^$' | tr '\n' ' ')"; \
    fi; \
    if [ -n "${extensions}" ]; then \
        apt-get update; \
        apt-get install -y ${extensions}; \
        apt-get clean; \
        rm -rf /var/lib/apt/lists/* /var/cache/apt/* /var/log/apt/* /var/log/dpkg.log; \
    fi; \
    rm -f /tmp/aza-pg-extensions.txt; \
    # A self-signed key generated at build time would be the same in every container: drop it.
    rm -f /etc/ssl/private/ssl-cert-snakeoil.key /etc/ssl/certs/ssl-cert-snakeoil.pem; \
    test ! -e "/etc/postgresql/${PG_MAJOR}/main"; \
    if [ -x /usr/bin/pgbackrest ]; then ln -sf /usr/bin/pgbackrest /usr/local/bin/pgbackrest; fi; \
    install -d -o postgres -g postgres -m 0700 /var/lib/postgresql/data; \
    install -d -o postgres -g postgres -m 2775 /var/run/postgresql; \
    install -d -o postgres -g postgres -m 0750 /var/lib/pgbackrest /var/log/pgbackrest /var/spool/pgbackrest \
        /etc/pgbackrest; \
    install -d -m 0755 /etc/postgresql/conf.d /etc/postgresql/certs /docker-entrypoint-initdb.d
VOLUME /var/lib/postgresql/data
EXPOSE 5432
STOPSIGNAL SIGINT
HEALTHCHECK --interval=10s --timeout=5s --start-period=120s --retries=3 CMD ["aza-pg", "healthcheck"]
ENTRYPOINT ["aza-pg", "postgres"]
CMD []
# Replaces the symlink made above with the wrapper (image/backup/pgbackrest) when there is one.
COPY --from=app /out/pg/ /
COPY --from=app /out/app/ /
