# `mlops serve`: answers predictions from the ONNX model an environment's manifest pins.
#
#   docker build -t mlgitops-serve .
#   docker run --rm -p 8080:8080 -v "$PWD:/repo" mlgitops-serve staging
#
# Mount the repository checkout that holds mlops.yaml and the manifests at /repo (a
# GitOps agent, or a `git pull` sidecar, keeps it at the default branch); the pinned
# artifact must be readable in the container: keep registry.path inside the checkout
# or mount the shared registry folder at the same absolute path. The server re-reads
# the manifest every 2 s and swaps in a newly pinned model after checking its sha256.
FROM python:3.12-slim

# git: mlops finds the repository root with it (and `--ref main` reads the manifest from git)
RUN apt-get update \
    && apt-get install -y --no-install-recommends git \
    && rm -rf /var/lib/apt/lists/* \
    && git config --system --add safe.directory '*'

WORKDIR /opt/mlgitops
COPY pyproject.toml README.md mlops.yaml ./
COPY mlgitops ./mlgitops
COPY flows ./flows
COPY templates ./templates
RUN pip install --no-cache-dir . && mlops --version

# No root at run time; the mounted checkout only needs to be readable.
RUN useradd --create-home --uid 10001 mlops
USER mlops
WORKDIR /repo
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=2)"
ENTRYPOINT ["mlops", "serve", "--host", "0.0.0.0", "--port", "8080"]
CMD ["staging"]
