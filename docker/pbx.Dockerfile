# The PBX of the production shape: Debian's own asterisk package (Asterisk 22 in sid),
# configured from the same templates as the sandbox (rendered by `dunline pbx render`).
FROM debian:sid-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends asterisk asterisk-core-sounds-en-gsm \
 && rm -rf /var/lib/apt/lists/*
USER asterisk
CMD ["asterisk", "-f", "-U", "asterisk", "-G", "asterisk", "-C", "/etc/asterisk-dunline/asterisk.conf"]
