# pglens on Debian 12, built from the same package list as a developer machine and CI
# (scripts/install-deps.sh) with the same build script. Used by docker-compose.yml.
FROM debian:12

ENV DEBIAN_FRONTEND=noninteractive
WORKDIR /src
COPY . .
RUN ./scripts/install-deps.sh \
 && ./scripts/build.sh -DPGLENS_BUILD_TESTS=OFF \
 && rm -rf /var/lib/apt/lists/*

# 6432: PostgreSQL clients; 9930: /metrics, /api/fingerprints, /api/pools, /healthz
EXPOSE 6432 9930
ENTRYPOINT ["/src/build/bin/pglens"]
CMD ["--help"]
