# imagine-bot: small, non-root, uv-based. Build: docker build -t imagine-bot .
# Run:   docker run --env-file .env -e DATA_DIR=/data -v imagine-data:/data imagine-bot  (compose pins DATA_DIR too)
FROM python:3.11-slim

COPY --from=ghcr.io/astral-sh/uv:0.8 /uv /usr/local/bin/uv
# MALLOC_*: glibc with two arenas, and big blocks (Pillow's bitmaps) always mapped so a free gives them back;
# otherwise each 4K preview leaves ~100 MB of heap behind.
ENV UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy UV_PYTHON_DOWNLOADS=never MALLOC_ARENA_MAX=2 \
    MALLOC_MMAP_THRESHOLD_=1048576 PYTHONUNBUFFERED=1 DATA_DIR=/data

WORKDIR /app
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --locked --no-dev --no-install-project
COPY bot ./bot
RUN uv sync --locked --no-dev

RUN useradd --system --uid 10001 --home-dir /app imagine \
    && mkdir -p /data && chown imagine /data
USER imagine
VOLUME ["/data"]

STOPSIGNAL SIGTERM
CMD ["/app/.venv/bin/imagine-bot"]
