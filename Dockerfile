# hazardwatch's own services (bridge, worker, alerts API, simulator) for docker compose.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY hazardwatch hazardwatch
COPY ingest ingest
COPY stream stream
COPY alerting alerting
COPY dashboards dashboards
COPY simulators simulators
COPY examples examples
RUN pip install --no-cache-dir .
USER nobody
ENTRYPOINT ["hazardwatch"]
