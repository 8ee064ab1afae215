#!/usr/bin/env bash
# The Windows check: cross-builds pcbulk.exe (x86_64-pc-windows-gnu, linked by mingw-w64) and runs it
# under wine: template, validate, apply against the embedded sandbox, undo, and a run killed midway
# then resumed against a sandbox (itself pcbulk.exe under wine). Every step's outcome is checked (exit
# code, the results file's rows, the sandbox's own state); the first that differs fails the script.
#
# Needs: rustup's x86_64-pc-windows-gnu target, mingw-w64, wine 8 or later, curl, python3. Run as
# root on Debian it installs what is missing with apt-get. See docs/WINDOWS.md.
set -euo pipefail
cd "$(dirname "$0")/.."

TARGET=x86_64-pc-windows-gnu
WORK="$PWD/target/windows-check"
RUN="$WORK/run"

say() { echo "windows-check: $*" >&2; }
fail() {
  say "FAILED: $*"
  exit 1
}
loud() {
  echo >&2
  echo "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!" >&2
  echo "!!! windows-check: $*" >&2
  echo "!!! The Windows binary was NOT built or run. See docs/WINDOWS.md, \"Running the check\"." >&2
  echo "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!" >&2
  exit 1
}

# --- tools -------------------------------------------------------------------------------------
if ! command -v x86_64-w64-mingw32-gcc >/dev/null 2>&1 || ! command -v wine >/dev/null 2>&1 ||
  ! command -v curl >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y mingw-w64 wine wine64 curl; } ||
      loud "apt-get could not install mingw-w64 and wine"
  else
    loud "mingw-w64 and wine are missing (Debian: apt-get install mingw-w64 wine wine64 curl)"
  fi
fi
if ! rustup target list --installed | grep -qx "$TARGET"; then
  rustup target add "$TARGET" || loud "rustup could not fetch the $TARGET target (no network to static.rust-lang.org?)"
fi

# --- build -------------------------------------------------------------------------------------
CARGO_INCREMENTAL=0 cargo build --release --locked --target "$TARGET"
rm -rf "$RUN"
mkdir -p "$RUN"
cp "target/$TARGET/release/pcbulk.exe" "$RUN/"
# Rust's std calls ProcessPrng (bcryptprimitives.dll), which Debian bookworm's wine 8 lacks.
x86_64-w64-mingw32-gcc -shared -O2 -s -o "$RUN/bcryptprimitives.dll" \
  .ci/windows/bcryptprimitives.c -ladvapi32
cp samples/support-contacts.csv "$RUN/"

# --- wine --------------------------------------------------------------------------------------
export WINEPREFIX="$WORK/prefix" WINEDEBUG=-all WINEARCH=win64
# The stub beside the .exe before wine's own; no Mono or Gecko installer prompts.
export WINEDLLOVERRIDES="bcryptprimitives=n,b;mscoree=;mshtml="
unset DISPLAY
SANDBOX_PID=
cleanup() {
  [ -n "$SANDBOX_PID" ] && kill "$SANDBOX_PID" 2>/dev/null || true
  wineserver -k 2>/dev/null || true
}
trap cleanup EXIT
wineboot --init >/dev/null 2>&1 || fail "wineboot could not make the wine prefix $WINEPREFIX"

cd "$RUN"
# pcbulk.exe under wine; its exit code is the command's.
pc() { wine ./pcbulk.exe "$@"; }
# `expect CODE what -- command...`: runs it, output in $LOG, and fails unless it exits with CODE.
expect() {
  local want=$1 what=$2
  shift 3
  local got=0
  "$@" >"$LOG" 2>&1 || got=$?
  [ "$got" = "$want" ] || { cat "$LOG" >&2; fail "$what: exit $got, expected $want"; }
  say "ok: $what (exit $got)"
}
LOG="$RUN/step.log"

# Statuses of a results/validation file, one "row:status" a line, read with Python's csv module.
statuses() {
  python3 - "$1" <<'EOF'
import csv, sys
with open(sys.argv[1], newline="", encoding="utf-8-sig") as f:
    for r in csv.DictReader(f):
        print(f"{r['row']}:{r['status']}")
EOF
}
same() { [ "$1" = "$2" ] || fail "$3: got [$(echo $1)], expected [$(echo $2)]"; }

# --- template, validate, apply --sandbox, undo --------------------------------------------------
expect 0 "template support-contact" -- pc template support-contact
head -1 "$LOG" | tr -d '\r' | grep -qx "customer_id,subscription_id,support_tenant_id,support_mpn_id,name" ||
  fail "template support-contact: unexpected header $(head -1 "$LOG")"

# The sample holds two invalid rows (a letter O in a PartnerID, a duplicate target): exit 1.
expect 1 "validate support-contacts.csv" -- pc validate support-contacts.csv
same "$(statuses support-contacts.validation.csv)" \
  "$(printf '%s\n' 1:valid 2:valid 3:valid 4:valid 5:valid 6:invalid 7:invalid)" "validation statuses"

# Rows 4 and 5 are refused by the (simulated) service: exit 1, three rows changed.
expect 1 "apply support-contacts.csv --sandbox" -- pc apply support-contacts.csv --sandbox
same "$(statuses support-contacts.results.csv)" \
  "$(printf '%s\n' 1:succeeded 2:succeeded 3:succeeded 4:failed 5:failed 6:invalid 7:invalid)" \
  "apply --sandbox statuses"

expect 0 "undo support-contacts.results.csv" -- pc undo support-contacts.results.csv
grep -q "wrote 3 undo rows to support-contacts.undo.csv" "$LOG" || fail "undo: $(cat "$LOG")"
expect 0 "validate support-contacts.undo.csv" -- pc validate support-contacts.undo.csv

# --- a run killed midway, then --resume ---------------------------------------------------------
# A sandbox (pcbulk.exe sandbox under wine) that answers slowly, so a kill lands midway.
(exec wine ./pcbulk.exe sandbox --listen 127.0.0.1:0 --latency-ms 150 >sandbox.out 2>sandbox.err) &
SANDBOX_PID=$!
URL=
for _ in $(seq 600); do # the sandbox's first line, looked for every 0.1 s for at most a minute
  URL=$(head -1 sandbox.out | tr -d '\r' | sed -n 's/^pcbulk sandbox listening on //p')
  [ -n "$URL" ] && break
  kill -0 "$SANDBOX_PID" 2>/dev/null || fail "sandbox ended: $(cat sandbox.err)"
  sleep 0.1
done
[ -n "$URL" ] || fail "the sandbox never said where it listens"
say "sandbox at $URL"

ROWS=60
{
  echo "service_request_id,note"
  for i in $(seq 1 $ROWS); do echo "61612229287457$((i % 4 + 6)),wine note $i"; done
} >notes.csv
export PCBULK_ACCESS_TOKEN=sandbox
NOTES_ARGS=(apply notes.csv --base-url "$URL" --concurrency 2 --timeout 2)
apply_notes() { pc "${NOTES_ARGS[@]}" "$@"; }

# exec: the background job's pid is pcbulk.exe's own (wine execs its loader), so the kill reaches it.
(exec wine ./pcbulk.exe "${NOTES_ARGS[@]}" >killed.log 2>&1) &
APPLY_PID=$!
# Killed (SIGKILL, no chance to tidy up) once its journal holds 10 records.
for _ in $(seq 1200); do
  [ -f notes.results.csv.journal ] && [ "$(wc -l <notes.results.csv.journal)" -ge 10 ] && break
  kill -0 "$APPLY_PID" 2>/dev/null || { cat killed.log >&2; fail "the run ended before it could be killed"; }
  sleep 0.05
done
kill -9 "$APPLY_PID" || fail "the run ended before it could be killed"
wait "$APPLY_PID" 2>/dev/null || true
say "killed the run with $(wc -l <notes.results.csv.journal) journal records"

# The sandbox's notes: "text count" a line, sorted.
notes() {
  curl -sf "$URL/_sandbox/state" | python3 -c '
import collections, json, sys
c = collections.Counter(n["text"] for sr in json.load(sys.stdin)["serviceRequests"] for n in sr["notes"])
for t, n in sorted(c.items()):
    if t.startswith("wine note "): print(t, n)'
}
sent=$(notes | wc -l)
[ "$sent" -lt "$ROWS" ] || fail "the kill did not land midway: all $ROWS notes were already sent"
say "$sent of $ROWS notes were in the sandbox when the run was killed"

expect 0 "apply --resume after the kill" -- apply_notes --resume
same "$(statuses notes.results.csv | sort -t: -k1n)" \
  "$(for i in $(seq 1 $ROWS); do echo "$i:succeeded"; done)" "resumed run's statuses"
same "$(notes)" "$(for i in $(seq 1 $ROWS); do echo "wine note $i 1"; done | LC_ALL=C sort)" \
  "each note in the sandbox exactly once"

say "all steps passed"
