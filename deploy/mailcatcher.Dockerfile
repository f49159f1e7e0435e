# deploy/mailcatcher.Dockerfile - the SMTP catcher of docker-compose.yml:
# tests/integration/smtp_catcher.py (the one `make run` uses) on Debian's
# python3-aiosmtpd.  It accepts every mail on port 2525 and writes it to
# /mail/<time>-<n>.eml.  For local use only: it relays nothing.
ARG DEBIAN=debian:12-slim
FROM ${DEBIAN}
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      python3-aiosmtpd \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 studyshare \
 && useradd --system --uid 10001 --gid 10001 --no-create-home \
      --home-dir /nonexistent --shell /usr/sbin/nologin studyshare \
 && install -d -o 10001 -g 10001 -m 0750 /mail
COPY tests/integration/smtp_catcher.py /usr/local/bin/smtp-catcher
USER 10001:10001
EXPOSE 2525
VOLUME ["/mail"]
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
  CMD ["/usr/bin/python3", "-c", "import socket; socket.create_connection(('127.0.0.1', 2525), 2).close()"]
ENTRYPOINT ["/usr/bin/python3", "/usr/local/bin/smtp-catcher"]
CMD ["--host", "0.0.0.0", "--port", "2525", "--dir", "/mail"]
