# dunline, right by construction: the first stage builds the wheel from the source tree as
# a build does (every package and template the project declares), the second installs only
# that wheel. tests/unit/test_images.py applies this file's COPY/RUN steps to the repository
# and runs the installed `dunline` from them.
FROM python:3.11-slim-bookworm AS build
WORKDIR /src
COPY . /src
RUN pip install --no-cache-dir --upgrade pip setuptools wheel
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

FROM python:3.11-slim-bookworm
# ffmpeg: the optional compressed playback copy; fonts-wqy-zenhei: the Chinese of the weekly
# report's PDF and charts; openssl: nothing of ours needs it, the bags' verifier can use it.
# The dunline group shares the recording spool with the PBX (gid 990 in both images); files
# at rest are the owner's and the group's only (umask 027, set by dunline).
RUN apt-get update && apt-get install -y --no-install-recommends ffmpeg fonts-wqy-zenhei \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --gid 990 dunline && useradd --uid 990 --gid dunline --no-create-home --shell /usr/sbin/nologin dunline \
 && mkdir -p /var/lib/dunline /archive /var/spool/asterisk/monitor/dunline \
 && chown dunline:dunline /var/lib/dunline /archive && chmod 0750 /var/lib/dunline /archive
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir --find-links /wheels 'dunline[postgres]' && rm -rf /wheels
USER dunline
WORKDIR /var/lib/dunline
ENV DUNLINE_DATABASE_JOURNAL_FILE=/var/lib/dunline/dunline-facts.journal \
    DUNLINE_AGI_TOKEN_KEY_FILE=/var/lib/dunline/agi-token.key \
    DUNLINE_RECORDING_LEDGER_KEY_FILE=/var/lib/dunline/ledger-key.pem \
    MPLCONFIGDIR=/var/lib/dunline/matplotlib \
    DUNLINE_REPORTS_WEEKLY_AUTO=true \
    DUNLINE_REPORTS_WEEKLY_DIR=/var/lib/dunline/reports
# healthy = the service answers and its dialing gate is open (the recording chain proven)
HEALTHCHECK --interval=15s --timeout=10s --start-period=120s CMD ["dunline", "watchdog", "status"]
CMD ["dunline", "serve"]
