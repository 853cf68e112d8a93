# One image for the refundflow worker and the sandbox services.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY workflows workflows
COPY activities activities
COPY worker worker
COPY client client
COPY sandbox sandbox
COPY policies policies
RUN pip install --no-cache-dir . && useradd --system refundflow
ENV REFUNDFLOW_POLICY_DIR=/app/policies \
    LOG_FORMAT=json
USER refundflow
CMD ["refundflow", "worker"]
