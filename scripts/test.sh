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
# The output is kept so that, when a test fails, its name and message are repeated at the very end,
# where a CI log that keeps only its tail still shows them.
mkdir -p artifacts
test_log=artifacts/test-output.log
if ! dotnet test EdgeUpdater.sln -c Release --no-build -nologo -m:1 --logger "console;verbosity=normal" "$@" 2>&1 | tee "$test_log"; then
    echo
    echo "FAIL: dotnet test failed; the failed tests (first lines of each, whole output in $test_log):"
    # `|| true`: head stops reading after 80 lines, and pipefail would end the report there.
    grep -E -A 12 '^\s*Failed [A-Za-z]|^\s*(Error Message|The active test run was aborted|Test Run Aborted)' "$test_log" | cut -c1-300 | head -n 80 || true
    awk '/^Test run for /{dll=$4} /^Test Run (Failed|Aborted)/{print "  " $0 " " dll}' "$test_log"
    exit 1
fi

# The agent as devices get it: Native AOT for arm64 and x64 with zero trim/AOT warnings and under the
# size budget, idle RSS of the x64 binary, and the arm64 binary under qemu-aarch64 updating a slot
# from a real server and mosquitto (docs/release.md, "CI checks").
scripts/ci/agent-aot-check.sh
scripts/ci/agent-idle-rss.sh --skip-publish
scripts/ci/agent-arm64-smoke.sh --skip-publish
