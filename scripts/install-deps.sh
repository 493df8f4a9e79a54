#!/usr/bin/env bash
# Installs the Debian packages Freshet needs to build and test.
# Non-interactive and idempotent: when everything is present it only checks.
set -euo pipefail

PACKAGES=(
  build-essential cmake ninja-build ccache pkg-config
  libboost1.81-dev libspdlog-dev libfmt-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  librocksdb-dev
  # Tests check query results against PostgreSQL, started on loopback.
  postgresql libpq-dev
  # Cluster: control plane (gRPC), configuration files, metrics, CLI, REST.
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libyaml-cpp-dev prometheus-cpp-dev libcli11-dev nlohmann-json3-dev libcpp-httplib-dev
  # The web UI: the build runs `npm ci` (web/package-lock.json) into the build
  # directory; the UI test (tests/ui) drives Debian's chromium with playwright-core.
  nodejs chromium
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

# Debian's nodejs leaves npm to a package of its own; other builds of nodejs
# (NodeSource's) ship it and conflict with that package: ask only when missing.
if ! command -v npm > /dev/null 2>&1; then
  missing+=(npm)
fi

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

echo "install-deps: installing ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
