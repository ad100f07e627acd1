# The Bakery server: `bakery serve` (gRPC on 50051, HTTP health/metrics on 8080).
#
# Build it with `uv run python -m serverimage` (README, "The server image"), not by hand: that
# makes the build context, a wheelhouse of bakery's wheel and every runtime dependency uv.lock
# pins (fetched and verified on the host: containers here cannot reach PyPI), loads the FROM
# base (the bakery's own Debian bookworm + python3 base; no registry is reachable either),
# and runs this file with the engine's legacy builder. Nothing below touches the network.
ARG BASE=bakery-server-base:bookworm

# -- install: a venv at /opt/bakery from the wheelhouse, with uv from the uv wheel itself ------
FROM ${BASE} AS install
COPY wheels/ /wheels/
RUN set -eu; \
    python3 -c 'import glob, zipfile; zipfile.ZipFile(glob.glob("/wheels/uv-*.whl")[0]).extractall("/tmp/uv")'; \
    uv=$(echo /tmp/uv/uv-*.data/scripts/uv); \
    chmod +x "$uv"; \
    export UV_NO_CACHE=1 UV_OFFLINE=1 UV_PYTHON_DOWNLOADS=never; \
    "$uv" venv --python /usr/bin/python3 /opt/bakery; \
    "$uv" pip install --python /opt/bakery/bin/python --no-index --find-links /wheels \
        --require-hashes --compile-bytecode -r /wheels/requirements.txt; \
    "$uv" pip install --python /opt/bakery/bin/python --no-index --no-deps --compile-bytecode \
        /wheels/bakery-*.whl; \
    /opt/bakery/bin/bakery --help >/dev/null

# -- the server: the venv on the same base, a non-root user, state and caches as volumes -------
FROM ${BASE}
RUN echo 'bakery:x:10001:10001:Bakery server:/var/lib/bakery:/usr/sbin/nologin' >>/etc/passwd \
    && echo 'bakery:x:10001:' >>/etc/group \
    && mkdir -p /var/lib/bakery /var/cache/bakery \
    && chown 10001:10001 /var/lib/bakery /var/cache/bakery
COPY --from=install /opt/bakery /opt/bakery
# State (index, tokens, uploaded contents, code store) under BAKERY_DATA_DIR; wheels, layers
# and blobs under BAKERY_CACHE_DIR. SSL_CERT_FILE is what uv, httpx and grpc trust: mount a
# site's own CA bundle over it where TLS to PyPI or the registry is intercepted.
ENV PATH=/opt/bakery/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    LANG=C.UTF-8 \
    HOME=/var/lib/bakery \
    BAKERY_DATA_DIR=/var/lib/bakery \
    BAKERY_CACHE_DIR=/var/cache/bakery \
    UV_CACHE_DIR=/var/cache/bakery/uv \
    SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \
    BAKERY_HTTP_PORT=8080 \
    PYTHONUNBUFFERED=1
USER 10001:10001
WORKDIR /var/lib/bakery
VOLUME ["/var/lib/bakery", "/var/cache/bakery"]
EXPOSE 50051 8080
# Healthy while the HTTP side answers /healthz; BAKERY_HTTP_PORT says where when --http-port
# is not 8080 (say, under --network host).
HEALTHCHECK --interval=5s --timeout=4s --start-period=30s --retries=3 \
    CMD ["python3", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('BAKERY_HTTP_PORT', '8080'), timeout=3)"]
ENTRYPOINT ["bakery"]
CMD ["serve", "--host", "0.0.0.0", "--port", "50051", "--http-port", "8080"]
