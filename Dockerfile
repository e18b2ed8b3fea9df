# aza-pg images, all from Debian packages. One file, several targets:
#
#   postgres            PostgreSQL ${PG_MAJOR} + the extension catalog (incl. pgBackRest) + the aza-pg entrypoint (default)
#   pgbouncer           Debian's PgBouncer + the aza-pg entrypoint
#   postgres-exporter   prometheus-postgres-exporter, started by the aza-pg launcher
#   pgbouncer-exporter  prometheus-pgbouncer-exporter, started by the aza-pg launcher
#   prometheus          Prometheus (the monitoring example)
#
#   docker build --target postgres -t aza-pg/postgres:17 .
#
# Build arguments: BASE_IMAGE (default debian:trixie-slim), PG_MAJOR (default 17, from Debian's archive),
# INSTALL_EXTENSIONS (1 = the packages listed in image/packages/extensions.txt, 0 = contrib only, for
# variants such as BASE_IMAGE=debian:bookworm-slim PG_MAJOR=15), PG_UID / PG_GID (999).
# Only the classic Dockerfile syntax is used, so the legacy builder and BuildKit both build it.

ARG BASE_IMAGE=debian:trixie-slim

# ---------------------------------------------------------------------------------------------------
# Shared runtime: Debian's Python with the entrypoint's dependencies, and the `postgres` account.
FROM ${BASE_IMAGE} AS runtime
ARG PG_UID=999
ARG PG_GID=999
ENV LANG=C.UTF-8 \
    DEBIAN_FRONTEND=noninteractive
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
# The aza-pg entrypoint package, byte-compiled, without pip: copied into each image below.
FROM runtime AS app
COPY pyproject.toml image/install-entrypoint.py /tmp/aza-pg-build/
COPY image/aza-pg /usr/local/bin/aza-pg
COPY entrypoint/ /usr/lib/aza-pg/entrypoint/
RUN set -eux; \
    python3 /tmp/aza-pg-build/install-entrypoint.py /tmp/aza-pg-build/pyproject.toml /usr/lib/aza-pg; \
    rm -rf /tmp/aza-pg-build; \
    find /usr/lib/aza-pg -name __pycache__ -prune -exec rm -rf {} +; \
    python3 -m compileall -q /usr/lib/aza-pg; \
    aza-pg --version

# ---------------------------------------------------------------------------------------------------
# PgBouncer.
FROM runtime AS pgbouncer
RUN set -eux; \
    apt-get update; \
    apt-get install -y pgbouncer; \
    apt-get clean; \
    rm -rf /var/lib/apt/lists/* /var/cache/apt/* /var/log/apt/* /var/log/dpkg.log; \
    # The entrypoint renders its own configuration; a packaged pgbouncer.ini would be mistaken for a
    # user-mounted one, and the packaged self-signed key must not be shared by every container.
    rm -f /etc/pgbouncer/pgbouncer.ini /etc/pgbouncer/userlist.txt \
        /etc/ssl/private/ssl-cert-snakeoil.key /etc/ssl/certs/ssl-cert-snakeoil.pem; \
    mkdir -p /var/run/postgresql; \
    chown postgres:postgres /var/run/postgresql; \
    chmod 2775 /var/run/postgresql; \
    pgbouncer --version
COPY --from=app /usr/lib/aza-pg/ /usr/lib/aza-pg/
COPY --from=app /usr/local/bin/aza-pg /usr/local/bin/aza-pg
EXPOSE 6432
STOPSIGNAL SIGINT
ENTRYPOINT ["aza-pg", "pgbouncer"]
CMD []

# ---------------------------------------------------------------------------------------------------
# The exporters: trixie's static Go binaries, started by the aza-pg launcher (it renders a 0600 passfile
# so no password reaches the exporter's argv or environment), as the unprivileged `nobody`.
FROM ${BASE_IMAGE} AS exporter-packages
RUN set -eux; \
    apt-get update; \
    apt-get install -y --no-install-recommends prometheus-postgres-exporter prometheus-pgbouncer-exporter; \
    /usr/bin/prometheus-postgres-exporter --version; \
    /usr/bin/prometheus-pgbouncer-exporter --version

FROM runtime AS exporter-base
COPY image/ /tmp/aza-pg-image/
RUN set -eux; \
    mkdir -p /etc/aza-pg/exporters; \
    if [ -d /tmp/aza-pg-image/exporters ]; then cp -a /tmp/aza-pg-image/exporters/. /etc/aza-pg/exporters/; fi; \
    rm -rf /tmp/aza-pg-image
COPY --from=app /usr/lib/aza-pg/ /usr/lib/aza-pg/
COPY --from=app /usr/local/bin/aza-pg /usr/local/bin/aza-pg
USER 65534:65534

FROM exporter-base AS postgres-exporter
COPY --from=exporter-packages /usr/bin/prometheus-postgres-exporter /usr/bin/prometheus-postgres-exporter
EXPOSE 9187
ENTRYPOINT ["aza-pg", "postgres-exporter"]
CMD []

FROM exporter-base AS pgbouncer-exporter
COPY --from=exporter-packages /usr/bin/prometheus-pgbouncer-exporter /usr/bin/prometheus-pgbouncer-exporter
EXPOSE 9127
ENTRYPOINT ["aza-pg", "pgbouncer-exporter"]
CMD []

# ---------------------------------------------------------------------------------------------------
# Prometheus for the monitoring example (examples/prometheus mounts prometheus.yml and rules/ over
# /etc/prometheus/).
FROM ${BASE_IMAGE} AS prometheus
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
COPY image/ /usr/share/aza-pg/
RUN rm -rf /usr/share/aza-pg/aza-pg /usr/share/aza-pg/packages /usr/share/aza-pg/install-entrypoint.py
COPY --from=app /usr/lib/aza-pg/ /usr/lib/aza-pg/
COPY --from=app /usr/local/bin/aza-pg /usr/local/bin/aza-pg
VOLUME /var/lib/postgresql/data
EXPOSE 5432
STOPSIGNAL SIGINT
HEALTHCHECK --interval=10s --timeout=5s --start-period=120s --retries=3 CMD ["aza-pg", "healthcheck"]
ENTRYPOINT ["aza-pg", "postgres"]
CMD []
