#!/usr/bin/env bash
# Install sscp-ops on a Debian 12 host as systemd services (run as root from a checkout).
#   deploy/install.sh [--with-nginx]
set -euo pipefail
src="$(cd "$(dirname "$0")/.." && pwd)"
prefix=/opt/sscp-ops
with_nginx=0
[ "${1:-}" = "--with-nginx" ] && with_nginx=1

[ "$(id -u)" -eq 0 ] || { echo "run as root" >&2; exit 1; }
"$src/scripts/install-debian-packages" python3 python3-venv python3-pip mariadb-client libpango-1.0-0 libpangoft2-1.0-0 fonts-noto-cjk
[ $with_nginx -eq 1 ] && "$src/scripts/install-debian-packages" nginx

id sscp-ops >/dev/null 2>&1 || useradd --system --home-dir /var/lib/sscp-ops --shell /usr/sbin/nologin sscp-ops
install -d -o root -g root -m 0755 "$prefix"
cp -a "$src/." "$prefix/"
rm -rf "$prefix/.venv" "$prefix/var" "$prefix/.git"
python3 -m venv "$prefix/.venv"
"$prefix/.venv/bin/pip" install -q "$prefix[backup-encryption]"

install -d -o root -g sscp-ops -m 0750 /etc/sscp-ops
[ -f /etc/sscp-ops/config.yml ] || install -o root -g sscp-ops -m 0640 "$src/deploy/config.example.yml" /etc/sscp-ops/config.yml
install -d -o sscp-ops -g sscp-ops -m 0750 /var/lib/sscp-ops /var/log/sscp-ops
install -m 0644 "$src/deploy/systemd/"*.service "$src/deploy/systemd/"*.timer /etc/systemd/system/ 2>/dev/null || true
install -m 0644 "$src/deploy/logrotate/sscp-ops" /etc/logrotate.d/sscp-ops
# Prometheus (Debian's package) with the shipped config and 400 days of retention.
install -D -m 0644 "$src/deploy/systemd/prometheus.service.d/sscp-ops.conf" /etc/systemd/system/prometheus.service.d/sscp-ops.conf
if [ $with_nginx -eq 1 ]; then
  install -m 0644 "$src/deploy/nginx/sscp-ops.conf" /etc/nginx/sites-available/sscp-ops.conf
  ln -sf /etc/nginx/sites-available/sscp-ops.conf /etc/nginx/sites-enabled/sscp-ops.conf
  nginx -t
fi
# Refuse to start on a bad config: the exporter validates it and exits 2 with the key path.
"$prefix/.venv/bin/python" -c "from sscp_ops.config import load_config; load_config('/etc/sscp-ops/config.yml')"
if command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
  systemctl daemon-reload
  systemctl enable --now sscp-ops-exporter.service sscp-ops-webhook.service
  [ $with_nginx -eq 1 ] && systemctl reload nginx
fi
echo "installed into $prefix; config in /etc/sscp-ops/config.yml"
