# One image for every refundflow process: worker, API, webhooks, codec server, sandbox.
FROM python:3.11-slim
WORKDIR /app
# Dependencies first, a layer of their own: every one from requirements.lock, checked
# against its hashes (the build backend, setuptools, included), as scripts/bootstrap.sh does.
# The lock holds the test extra too (one lock, one resolution): those packages come along.
COPY requirements.lock ./
RUN pip install --no-cache-dir --require-hashes -r requirements.lock
# Every package pyproject.toml lists ([tool.setuptools] packages), and the policies.
COPY pyproject.toml README.md ./
COPY workflows workflows
COPY activities activities
COPY worker worker
COPY client client
COPY sandbox sandbox
COPY bench bench
COPY api api
COPY policies policies
# refundflow itself: no dependency resolution (all locked above) and no build isolation
# (the locked setuptools builds it), so nothing unhashed is downloaded.
RUN pip install --no-cache-dir --no-deps --no-build-isolation . && useradd --system refundflow
ENV REFUNDFLOW_POLICY_DIR=/app/policies \
    LOG_FORMAT=json
USER refundflow
CMD ["refundflow", "worker"]
