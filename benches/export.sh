#!/usr/bin/env bash
# Export benchmark: how much more than its reads does `pcbulk export` cost, and does its memory
# stay flat with the number of rows?
#
# What it measures
#   * A `pcbulk sandbox` on 127.0.0.1 with N load customers of M subscriptions each (no limit, no
#     latency), for each N of EXPORT_CUSTOMERS.
#   * `pcbulk export support-contact` of the whole tenant (no --rate limit): rows/s, wall time and
#     peak RSS (GNU time -v). Its calls: the customer pages, one subscription listing per customer,
#     one support-contact GET per subscription.
#   * The same reads alone: oha sends every subscription listing and support-contact GET the
#     export made (their URLs taken from the exported file) at the same concurrency, to the same
#     sandbox; the ratio is the export's wall time over oha's.
#   * Under a limit (EXPORT_WINDOW_RATE > 0): a sandbox with fixed windows (`--rate R --window W`,
#     refused calls counted against the limit, the sandbox's default) and EXPORT_WINDOW_CUSTOMERS
#     customers (2,000 x 5: about 12,600 calls, over 60 one-second windows at 200/s); export
#     with no --rate of its own, so only the adaptive controller paces it. 429 share = 429s / calls;
#     admitted = successes per full window / the window's limit (R x W), over the full windows of
#     the run: the windows start when the sandbox does, and each success is placed by the time its
#     answer came (the export's -vv JSON log; the sandbox admits a call just before answering it).
#   Nothing is sent anywhere but 127.0.0.1.
#
# How to run
#   bash benches/export.sh                              # 1,000 and 10,000 customers x 5
#   EXPORT_CUSTOMERS="10000" bash benches/export.sh     # one size
#   PCBULK_BIN=/path/to/pcbulk bash benches/export.sh   # skip `cargo build --release`
#
# Environment
#   EXPORT_CUSTOMERS ("1000 10000")  EXPORT_SUBSCRIPTIONS (5)  EXPORT_CONCURRENCY (32)
#   EXPORT_PAGE_SIZE (100: the sandbox's page size and the size export asks for)
#   EXPORT_WINDOW_RATE (200: the windowed limit in calls/s; 0 skips that part)
#   EXPORT_WINDOW (1: the window's length in whole seconds)
#   EXPORT_WINDOW_CUSTOMERS (2000: the customers behind the windowed limit)
#   EXPORT_WINDOW_ONLY (0: set 1 to run only the windowed part)
#   PCBULK_BIN (build if unset)  EXPORT_KEEP (0: set 1 to keep the temp dir)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SIZES=${EXPORT_CUSTOMERS:-"1000 10000"}
SUBS=${EXPORT_SUBSCRIPTIONS:-5}
CONC=${EXPORT_CONCURRENCY:-32}
PAGE=${EXPORT_PAGE_SIZE:-100}
KEEP=${EXPORT_KEEP:-0}
WINDOW_RATE=${EXPORT_WINDOW_RATE:-200}
WINDOW=${EXPORT_WINDOW:-1}
WINDOW_CUSTOMERS=${EXPORT_WINDOW_CUSTOMERS:-2000}
WINDOW_ONLY=${EXPORT_WINDOW_ONLY:-0}

log() { printf '[export] %s\n' "$*" >&2; }
die() { printf '[export] error: %s\n' "$*" >&2; exit 1; }

for v in SUBS CONC PAGE WINDOW WINDOW_CUSTOMERS; do
    [[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "$v must be a positive integer (got '${!v}')"
done
command -v oha >/dev/null || die "oha is needed (cargo install oha)"
command -v python3 >/dev/null || die "python3 is needed"
[[ -x /usr/bin/time ]] || die "GNU time is needed (/usr/bin/time)"

if [[ -z ${PCBULK_BIN:-} ]]; then
    log "cargo build --release"
    (cd "$ROOT" && cargo build --release --bin pcbulk >&2)
    PCBULK_BIN=$ROOT/target/release/pcbulk
fi

TMP=$(mktemp -d)
SANDBOX_PID=
cleanup() {
    [[ -n $SANDBOX_PID ]] && kill "$SANDBOX_PID" 2>/dev/null && wait "$SANDBOX_PID" 2>/dev/null
    [[ $KEEP == 1 ]] && log "kept $TMP" || rm -rf "$TMP"
}
trap cleanup EXIT

# Starts a sandbox of $1 customers; sets URL, SANDBOX_PID and STARTED (the epoch seconds just
# before it was started: its windows start a few milliseconds later). Its address is its first line.
start_sandbox() {
    local n=$1
    shift
    STARTED=$(date +%s.%N)
    "$PCBULK_BIN" sandbox --listen 127.0.0.1:0 --customers "$n" \
        --subscriptions-per-customer "$SUBS" --page-size "$PAGE" "$@" >"$TMP/sandbox.out" 2>/dev/null &
    SANDBOX_PID=$!
    for _ in $(seq 1 600); do
        URL=$(sed -n 's/^pcbulk sandbox listening on //p' "$TMP/sandbox.out")
        [[ -n $URL ]] && return 0
        kill -0 "$SANDBOX_PID" 2>/dev/null || die "the sandbox did not start"
        sleep 0.01
    done
    die "the sandbox did not say its address"
}

stop_sandbox() {
    kill "$SANDBOX_PID" 2>/dev/null; wait "$SANDBOX_PID" 2>/dev/null || true
    SANDBOX_PID=
}

# The subscription listings and support-contact GETs the export made, as URLs, from its file.
urls_of_export() {
    python3 - "$1" "$URL" >"$TMP/urls.txt" <<'EOF'
import csv, sys
path, base = sys.argv[1], sys.argv[2]
seen = set()
with open(path, newline='', encoding='utf-8-sig') as f:  # export files start with a BOM
    for row in csv.DictReader(f):
        c, s = row['customer_id'], row['subscription_id']
        if c not in seen:
            seen.add(c)
            print(f"{base}/v1/customers/{c}/subscriptions")
        print(f"{base}/v1/customers/{c}/subscriptions/{s}/supportcontact")
EOF
    wc -l <"$TMP/urls.txt"
}

printf '| customers | rows | export wall s | rows/s | peak RSS MiB | its reads alone (oha) s | export / reads |\n'
printf '|---|---|---|---|---|---|---|\n'
[[ $WINDOW_ONLY == 1 ]] && SIZES=
for N in $SIZES; do
    [[ $N =~ ^[1-9][0-9]*$ ]] || die "EXPORT_CUSTOMERS holds '$N', not a count"
    start_sandbox "$N"
    log "$N customers x $SUBS: export"
    PCBULK_ACCESS_TOKEN=sandbox /usr/bin/time -v "$PCBULK_BIN" export support-contact \
        --base-url "$URL" --rate 1000000 --concurrency "$CONC" --page-size "$PAGE" -q \
        --out "$TMP/e.csv" --summary-json "$TMP/s.json" 2>"$TMP/time.txt" || true
    read -r ROWS WALL < <(python3 -c 'import json,sys; s=json.load(open(sys.argv[1])); print(s["rows"]["succeeded"], s["elapsed_s"])' "$TMP/s.json")
    RSS=$(awk -F: '/Maximum resident set size/ {printf "%.1f", $2/1024}' "$TMP/time.txt")
    CALLS=$(urls_of_export "$TMP/e.csv")
    log "$N customers: the same $CALLS reads with oha"
    oha --no-tui --output-format json -n "$CALLS" -c "$CONC" --urls-from-file "$TMP/urls.txt" \
        -H "Authorization: Bearer sandbox" -H "Accept: application/json" \
        -H "MS-Contract-Version: v1" >"$TMP/oha.json"
    OHA=$(python3 -c 'import json,sys; print(round(json.load(open(sys.argv[1]))["summary"]["total"], 3))' "$TMP/oha.json")
    stop_sandbox
    python3 - "$N" "$ROWS" "$WALL" "$RSS" "$OHA" <<'EOF'
import sys
n, rows, wall, rss, oha = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4], float(sys.argv[5])
print(f"| {int(n):,} | {rows:,} | {wall:.2f} | {rows / wall:,.0f} | {rss} | {oha:.2f} | {wall / oha:.2f} |")
EOF
done

[[ $WINDOW_RATE =~ ^[0-9]+$ ]] || die "EXPORT_WINDOW_RATE must be a whole number"
[[ $WINDOW_RATE == 0 ]] && exit 0
start_sandbox "$WINDOW_CUSTOMERS" --rate "$WINDOW_RATE" --window "$WINDOW"
log "$WINDOW_CUSTOMERS customers x $SUBS under --rate $WINDOW_RATE --window $WINDOW"
PCBULK_ACCESS_TOKEN=sandbox "$PCBULK_BIN" export support-contact --base-url "$URL" \
    --rate 1000000 --concurrency "$CONC" --page-size "$PAGE" -vv --log-format json \
    --out "$TMP/w.csv" --summary-json "$TMP/w.json" 2>"$TMP/w.log" >/dev/null || true
stop_sandbox
printf '\n| windowed limit | calls | 429s | 429 share | full windows | admitted | seconds |\n'
printf '|---|---|---|---|---|---|---|\n'
python3 - "$TMP/w.json" "$TMP/w.log" "$WINDOW_RATE" "$WINDOW" "$STARTED" <<'EOF'
import json, sys
from datetime import datetime
s, log = json.load(open(sys.argv[1])), sys.argv[2]
rate, window, started = int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])
limit = rate * window
calls, t429, secs = s["calls"], s["throttled"], s["elapsed_s"]
answers = []
for line in open(log, encoding="utf-8"):
    if not line.startswith("{"):
        continue
    e = json.loads(line)
    if e.get("message") == "answer":
        t = datetime.fromisoformat(e["timestamp"].replace("Z", "+00:00")).timestamp()
        answers.append((int((t - started) // window), e["status"]))
first, last = answers[0][0], answers[-1][0]
full = range(first + 1, last)  # the windows the run spanned whole
ok = sum(1 for w, st in answers if w in full and 200 <= st < 300)
print(f"| {rate}/s, {window} s windows | {calls:,} | {t429:,} | {100 * t429 / calls:.1f}% | "
      f"{len(full)} | {100 * ok / (limit * len(full)):.1f}% | {secs:.1f} |")
EOF
