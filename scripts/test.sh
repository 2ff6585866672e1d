#!/usr/bin/env bash
# Runs every EdgeUpdater test on a fresh Debian 12 machine: installs the Debian packages the tests use
# (squashfs-tools, mosquitto, PostgreSQL, grub-common, libubootenv-tool, ...), builds in Release and
# runs the whole suite. As root (as in CI) tests that need mounts must run: skipping them is an error.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/deps.sh
edgeupdater_install_deps

if [ "$(id -u)" -eq 0 ]; then
    export EDGEUPDATER_REQUIRE_ROOT=1
fi

dotnet build EdgeUpdater.sln -c Release -nologo -v q
# Test assemblies run one at a time: several of them start brokers, databases and mounts, and the
# machine has two cores.
dotnet test EdgeUpdater.sln -c Release --no-build -nologo -m:1 --logger "console;verbosity=normal" "$@"
