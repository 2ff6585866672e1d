#!/usr/bin/env bash
# Fleet benchmark of edgeupdater-server: N simulated MQTT devices (default 10000) in one process
# against the embedded broker, a rollout to all, each downloading a cached delta.
# usage: scripts/bench/server.sh [DEVICES] [DELTA_BYTES]
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/lib/deps.sh
edgeupdater_install_deps
dotnet build src/EdgeUpdater.Server -c Release -nologo -v q
dotnet build scripts/bench/ServerBench -c Release -nologo -v q
work=$(mktemp -d /tmp/edgeupdater-server-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
ulimit -n 65536 2>/dev/null || true
dotnet scripts/bench/ServerBench/bin/Release/net10.0/ServerBench.dll \
    src/EdgeUpdater.Server/bin/Release/net10.0/edgeupdater-server.dll "$work" "${1:-10000}" "${2:-262144}"
