# The connector node image: one image for every participant; the config file and the
# environment say who a container is (compose/docker-compose.yml).
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY connector ./connector
COPY credentials ./credentials
COPY policies ./policies
COPY vocab ./vocab
RUN pip install --no-cache-dir --prefix=/install '.[postgres]'

FROM python:3.11-slim
RUN useradd --create-home --uid 10001 bpc && mkdir -p /data && chown bpc /data
COPY --from=build /install /usr/local
USER bpc
WORKDIR /home/bpc
EXPOSE 8101-8105
HEALTHCHECK --interval=5s --timeout=3s --retries=20 CMD python -c "import os,urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health' % os.environ.get('BPC_PORT', '8181'), timeout=2)"
ENTRYPOINT []
CMD ["bpc", "serve", "--config", "/config/node.toml"]
