FROM python:3.11-slim-bookworm
RUN apt-get update && apt-get install -y --no-install-recommends ffmpeg && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY pyproject.toml README.md ./
COPY ami agi_scripts dialer recorder storage asterisk_conf cases console dunline ./
RUN pip install --no-cache-dir '.[postgres]'
USER nobody
CMD ["dunline", "serve"]
