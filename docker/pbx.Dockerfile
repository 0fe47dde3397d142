# The PBX of the production shape: Debian's own asterisk package (Asterisk 22 in sid),
# configured from the same templates as the sandbox (rendered by `dunline pbx-render`).
FROM debian:sid-slim
# The recording spool is shared with dunline through the dunline group (gid 990 in both
# images): setgid, so every recording takes the group; Asterisk runs with umask 027, so its
# recordings, hang-up records and logs (phone numbers) are for the owner and group only.
RUN apt-get update \
 && apt-get install -y --no-install-recommends asterisk asterisk-core-sounds-en-gsm \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --gid 990 dunline && usermod -a -G dunline asterisk \
 && mkdir -p /var/spool/asterisk/monitor/dunline \
 && chown asterisk:dunline /var/spool/asterisk/monitor/dunline \
 && chmod 2770 /var/spool/asterisk/monitor/dunline \
 && chmod 0750 /var/log/asterisk /var/spool/asterisk
USER asterisk
HEALTHCHECK --interval=15s --timeout=10s --start-period=30s \
  CMD ["asterisk", "-C", "/etc/asterisk-dunline/asterisk.conf", "-rx", "core show uptime"]
CMD ["sh", "-c", "umask 027 && exec asterisk -f -U asterisk -G asterisk -C /etc/asterisk-dunline/asterisk.conf"]
