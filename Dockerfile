# syntax=docker/dockerfile:1
# The Agora hub: `docker build -t agora .` then `docker run -p 8080:8080 -v agora-data:/var/lib/agora agora`.
# Every setting is an AGORA_* variable (`docker run --rm agora serve --help` lists them); README "Deploy".

# Debian's own Python (3.11 on bookworm) in both stages: the virtualenv built in the first runs in the second.
ARG DEBIAN_IMAGE=debian:bookworm-slim

FROM ${DEBIAN_IMAGE} AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-venv \
 && rm -rf /var/lib/apt/lists/*
# A build behind a package mirror or a TLS-inspecting proxy passes these as build arguments.
ARG PIP_INDEX_URL
ARG PIP_CERT
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
RUN python3 -m venv /opt/agora
WORKDIR /src
# The pinned dependencies first, in a layer of their own: a change to the code alone does not download them again.
COPY pyproject.toml README.md ./
RUN python3 -c 'import tomllib; print("\n".join(tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]))' \
      > /tmp/requirements.txt \
 && /opt/agora/bin/pip install -r /tmp/requirements.txt
COPY agora ./agora
COPY agora_sdk ./agora_sdk
RUN /opt/agora/bin/pip install --no-deps .

FROM ${DEBIAN_IMAGE}
# tini reaps what hosting nodes' instances leave behind and hands SIGTERM on; bubblewrap sandboxes listing code where
# the container may create namespaces (elsewhere `agora host --sandbox auto` runs it unsandboxed, as the node's user).
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 ca-certificates tini bubblewrap \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 agora \
 && useradd --system --uid 10001 --gid agora --home-dir /var/lib/agora --shell /usr/sbin/nologin agora \
 && install -d -o agora -g agora -m 0700 /var/lib/agora
COPY --from=build /opt/agora /opt/agora
ENV PATH=/opt/agora/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    AGORA_HOST=0.0.0.0 \
    AGORA_PORT=8080 \
    AGORA_DATA_DIR=/var/lib/agora \
    AGORA_NODE_DATA_DIR=/var/lib/agora/node \
    AGORA_LOCAL_NODE=false
USER 10001:10001
WORKDIR /var/lib/agora
VOLUME ["/var/lib/agora"]
EXPOSE 8080
# Ready: the database answers and its schema serves this version (GET /ready, no key needed).
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
  CMD ["python3", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/ready' % os.environ.get('AGORA_PORT', '8080'), timeout=2)"]
# SIGTERM: /ready fails for AGORA_SHUTDOWN_DELAY seconds while the hub still serves (behind a load balancer), then
# uvicorn stops accepting, long polls answer at once, streams close, in-flight requests finish within
# AGORA_GRACEFUL_TIMEOUT; give the container both plus a second (docker stop -t, terminationGracePeriodSeconds).
STOPSIGNAL SIGTERM
ENTRYPOINT ["tini", "--", "agora"]
CMD ["serve"]
