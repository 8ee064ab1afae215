#!/usr/bin/env bash
# Wire benchmark: how close does `pcbulk apply` come to what the machine can push over HTTP?
#
# What it measures
#   * A private nginx on 127.0.0.1 (1 worker, no access log, huge keepalive_requests) answers
#     every request, any method and any path, with 200 and a fixed support-contact JSON body.
#   * oha hammers that nginx with GETs at the same concurrency: the ceiling (requests/s).
#   * pcbulk applies a generated support-contact CSV (WIRE_ROWS rows, each row = 1 GET + 1 PUT)
#     against the same nginx with an unlimited --rate: pcbulk calls/s = 2 x rows / wall seconds,
#     plus its peak RSS (from /usr/bin/time -v).
#   * Best of WIRE_RUNS for both; prints a table with the ratio pcbulk calls/s / oha requests/s.
#   Nothing is sent anywhere but 127.0.0.1.
#
# How to run (as root on Debian; installs nginx, oha, python3, GNU time if missing)
#   bash benches/wire.sh                                   # 20,000 rows, concurrency 32, best of 3
#   WIRE_ROWS=1000000 WIRE_RUNS=1 WIRE_SKIP_OHA=1 bash benches/wire.sh   # memory check
#   PCBULK_BIN=/path/to/pcbulk bash benches/wire.sh        # skip `cargo build --release`
#   PCBULK_BIN_BEFORE=/path/to/older/pcbulk bash benches/wire.sh   # two builds side by side: their
#                                                          # runs alternate, each gets its row and ratio
#   PCBULK_BIN_ALSO="list=/path/a hyper=/path/b" bash benches/wire.sh   # more builds in the same
#                                                          # alternation, each labelled
#
# Environment
#   WIRE_ROWS (20000)  WIRE_CONCURRENCY (32)  WIRE_RUNS (3)  WIRE_PORT (18080, the next free one
#   is taken if it is busy and WIRE_PORT was not set)  WIRE_OHA_REQUESTS (200000 per oha run)
#   WIRE_SKIP_OHA (0)  WIRE_KEEP (0: set 1 to keep the temp dir)  PCBULK_BIN (build if unset)
#   PCBULK_BIN_BEFORE (unset: one build only)  PCBULK_BIN_ALSO (unset: space-separated label=path)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ROWS=${WIRE_ROWS:-20000}
CONC=${WIRE_CONCURRENCY:-32}
RUNS=${WIRE_RUNS:-3}
PORT=${WIRE_PORT:-18080}
OHA_REQUESTS=${WIRE_OHA_REQUESTS:-200000}
SKIP_OHA=${WIRE_SKIP_OHA:-0}
KEEP=${WIRE_KEEP:-0}
# The body nginx returns. Its supportTenantId differs from the CSV's, so every row is a GET + PUT.
BODY='{"supportTenantId":"00000000-0000-4000-8000-000000000001","supportMpnId":"1","name":"Old Name"}'

log() { printf '[wire] %s\n' "$*" >&2; }
die() { printf '[wire] error: %s\n' "$*" >&2; exit 1; }

for v in ROWS CONC RUNS PORT OHA_REQUESTS; do
    [[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "WIRE_$v must be a positive integer (got '${!v}')"
done

# ---------------------------------------------------------------------------------------------
# 1. Tools
# ---------------------------------------------------------------------------------------------
APT_UPDATED=0
apt_install() {
    if [[ $APT_UPDATED == 0 ]]; then
        apt-get update -qq
        APT_UPDATED=1
    fi
    log "apt-get install -y $*"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

export PATH="$PATH:/usr/sbin:/sbin:$HOME/.cargo/bin"
command -v nginx >/dev/null || apt_install nginx
command -v python3 >/dev/null || apt_install python3
[[ -x /usr/bin/time ]] || apt_install time

if [[ $SKIP_OHA != 1 ]] && ! command -v oha >/dev/null; then
    # Prefer Debian's package when there is one; else build it from crates.io.
    [[ $APT_UPDATED == 1 ]] || { apt-get update -qq; APT_UPDATED=1; }
    if apt-cache policy oha 2>/dev/null | grep -q 'Candidate: [0-9]'; then
        apt_install oha
    else
        command -v cargo >/dev/null || die "oha is not packaged by Debian and cargo is missing"
        log "cargo install oha --locked (a few minutes)"
        cargo install oha --locked
    fi
fi
NGINX_VERSION=$(nginx -v 2>&1 | sed 's/^nginx version: //')
OHA_VERSION=skipped
OHA_JSON=()
OHA_NOTUI=()
if [[ $SKIP_OHA != 1 ]]; then
    OHA_VERSION=$(oha --version 2>/dev/null | head -n1)

    # oha's flags changed over versions: newer ones have --output-format json, older ones --json.
    OHA_HELP=$(oha --help 2>&1)
    if grep -q -- '--output-format' <<<"$OHA_HELP"; then
        OHA_JSON=(--output-format json)
    elif grep -q -- '--json' <<<"$OHA_HELP"; then
        OHA_JSON=(--json)
    else
        die "this oha ($OHA_VERSION) has neither --output-format nor --json"
    fi
    if grep -q -- '--no-tui' <<<"$OHA_HELP"; then OHA_NOTUI=(--no-tui); fi
fi

# ---------------------------------------------------------------------------------------------
# 2. pcbulk
# ---------------------------------------------------------------------------------------------
if [[ -n ${PCBULK_BIN:-} ]]; then
    BIN=$PCBULK_BIN
else
    log "cargo build --release (waits if another build holds the lock)"
    (cd "$ROOT" && cargo build --release)
    BIN=$ROOT/target/release/pcbulk
fi
[[ -x $BIN ]] || die "no pcbulk binary at $BIN"
# (help captured first: `cmd | grep -q` under pipefail can fail on SIGPIPE even on a match)
APPLY_HELP=$("$BIN" apply --help 2>&1 || true)
APPLY_EXTRA=()
if grep -q -- '--yes' <<<"$APPLY_HELP"; then APPLY_EXTRA=(--yes); fi

# ---------------------------------------------------------------------------------------------
# 3. Temp dir, cleanup, nginx
# ---------------------------------------------------------------------------------------------
# From here on, traffic goes to 127.0.0.1 only: no proxy may pick it up (reqwest, urllib and
# friends honour these variables; the installs above may have needed them).
unset http_proxy https_proxy all_proxy HTTP_PROXY HTTPS_PROXY ALL_PROXY
export NO_PROXY=127.0.0.1,localhost no_proxy=127.0.0.1,localhost
TMP=$(mktemp -d "${TMPDIR:-/tmp}/pcbulk-wire.XXXXXX")
NGINX_PID=
cleanup() {
    local rc=$?
    if [[ -n $NGINX_PID ]] && kill -0 "$NGINX_PID" 2>/dev/null; then
        kill -QUIT "$NGINX_PID" 2>/dev/null || true   # graceful: master stops its worker
        for _ in $(seq 50); do kill -0 "$NGINX_PID" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$NGINX_PID" 2>/dev/null || true
        wait "$NGINX_PID" 2>/dev/null || true
    fi
    if [[ $KEEP == 1 ]]; then log "kept $TMP"; else rm -rf "$TMP"; fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
if ! port_free "$PORT"; then
    [[ -z ${WIRE_PORT:-} ]] || die "127.0.0.1:$PORT is in use (WIRE_PORT)"
    for p in $(seq $((PORT + 1)) $((PORT + 100))); do
        if port_free "$p"; then PORT=$p; break; fi
    done
    port_free "$PORT" || die "no free port in $((PORT))..$((PORT + 100))"
fi
URL=http://127.0.0.1:$PORT

# Run a private copy: a rebuild of target/release/pcbulk during the runs must not mix versions.
BIN_SRC=$BIN
BIN=$TMP/pcbulk
cp "$BIN_SRC" "$BIN"
BIN_SHA=$(sha256sum "$BIN" | cut -c1-12)
BEFORE=
if [[ -n ${PCBULK_BIN_BEFORE:-} ]]; then
    [[ -x $PCBULK_BIN_BEFORE ]] || die "no pcbulk binary at $PCBULK_BIN_BEFORE (PCBULK_BIN_BEFORE)"
    BEFORE=$TMP/pcbulk-before
    cp "$PCBULK_BIN_BEFORE" "$BEFORE"
    BEFORE_SHA=$(sha256sum "$BEFORE" | cut -c1-12)
fi
# More builds, each "label=path": copied like the others, run in the same alternation.
ALSO_LABELS=()
declare -A ALSO_BIN=() ALSO_SRC=() ALSO_SHA=()
for entry in ${PCBULK_BIN_ALSO:-}; do
    label=${entry%%=*} src=${entry#*=}
    [[ $label =~ ^[a-z0-9_-]+$ && $label != "$entry" ]] || die "PCBULK_BIN_ALSO: '$entry' is not label=path"
    [[ $label != before && $label != current && -z ${ALSO_BIN[$label]:-} ]] || die "PCBULK_BIN_ALSO: label '$label' is taken"
    [[ -x $src ]] || die "no pcbulk binary at $src (PCBULK_BIN_ALSO)"
    ALSO_LABELS+=("$label")
    ALSO_SRC[$label]=$src
    ALSO_BIN[$label]=$TMP/pcbulk-$label
    cp "$src" "${ALSO_BIN[$label]}"
    ALSO_SHA[$label]=$(sha256sum "${ALSO_BIN[$label]}" | cut -c1-12)
done

mkdir -p "$TMP/nginx"
cat >"$TMP/nginx/nginx.conf" <<EOF
worker_processes 1;
daemon off;
pid $TMP/nginx/nginx.pid;
error_log $TMP/nginx/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $TMP/nginx/body;
    proxy_temp_path $TMP/nginx/proxy;
    fastcgi_temp_path $TMP/nginx/fastcgi;
    uwsgi_temp_path $TMP/nginx/uwsgi;
    scgi_temp_path $TMP/nginx/scgi;
    keepalive_requests 1000000;
    keepalive_timeout 300s;
    server {
        listen 127.0.0.1:$PORT;
        server_name _;
        # 'return' answers any method (the static module would answer PUT with 405).
        location / {
            default_type application/json;
            return 200 '$BODY';
        }
    }
}
EOF
nginx -p "$TMP/nginx" -c "$TMP/nginx/nginx.conf" -e "$TMP/nginx/error.log" -t -q
nginx -p "$TMP/nginx" -c "$TMP/nginx/nginx.conf" -e "$TMP/nginx/error.log" &
NGINX_PID=$!
for _ in $(seq 100); do port_free "$PORT" || break; sleep 0.05; done
port_free "$PORT" && { cat "$TMP/nginx/error.log" >&2 || true; die "nginx did not start on $URL"; }

# Smoke check: GET and PUT both answer 200 with the JSON body.
python3 - "$URL" "$BODY" <<'PY'
import sys, urllib.request
url, body = sys.argv[1], sys.argv[2]
for method, data in (("GET", None), ("PUT", b'{"Name":"x"}')):
    req = urllib.request.Request(url + "/customers/a/subscriptions/b/supportcontact",
                                 data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=5) as r:
        got = r.read().decode()
        ctype = r.headers.get("Content-Type", "")
        if r.status != 200 or got != body or not ctype.startswith("application/json"):
            sys.exit(f"nginx answered {method} with {r.status} {ctype!r} {got!r}")
PY
log "nginx $NGINX_VERSION on $URL (pid $NGINX_PID)"

# ---------------------------------------------------------------------------------------------
# 4. Input CSV
# ---------------------------------------------------------------------------------------------
CSV=$TMP/contacts.csv
python3 - "$CSV" "$ROWS" <<'PY'
import sys
path, rows = sys.argv[1], int(sys.argv[2])
with open(path, "w", newline="") as f:
    f.write("customer_id,subscription_id,support_tenant_id,support_mpn_id,name\n")
    for i in range(1, rows + 1):
        customer = "c%07x-0000-4000-8000-000000000000" % (i % 16 + 1)  # 16 customers, cycled
        subscription = "d%07x-0000-4000-8000-%012x" % (i, i)          # unique per row
        f.write(f"{customer},{subscription},3b33e682-00c3-41ee-9dd2-a548adf56438,4391507,Trey Research\n")
PY
log "$ROWS rows in $CSV"

# ---------------------------------------------------------------------------------------------
# 5. oha: the ceiling
# ---------------------------------------------------------------------------------------------
OHA_BEST=0
if [[ $SKIP_OHA != 1 ]]; then
    for run in $(seq "$RUNS"); do
        out=$TMP/oha-$run.json
        oha -n "$OHA_REQUESTS" -c "$CONC" "${OHA_NOTUI[@]}" "${OHA_JSON[@]}" \
            "$URL/customers/c0000001-0000-4000-8000-000000000000/subscriptions/d0000001-0000-4000-8000-000000000001/supportcontact" \
            >"$out" 2>"$TMP/oha-$run.err" || { tail -n 20 "$TMP/oha-$run.err" >&2; die "oha run $run failed"; }
        rps=$(python3 - "$out" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
codes = d.get("statusCodeDistribution", {})
errors = d.get("errorDistribution", {})
if set(codes) != {"200"} or errors:
    sys.exit(f"oha saw status codes {codes} and errors {errors}")
print("%.1f" % d["summary"]["requestsPerSec"])
PY
)
        log "oha run $run: $rps requests/s"
        OHA_BEST=$(awk -v a="$OHA_BEST" -v b="$rps" 'BEGIN { print (b > a ? b : a) }')
    done
fi

# ---------------------------------------------------------------------------------------------
# 6. pcbulk
# ---------------------------------------------------------------------------------------------
declare -A BEST_SECS=() PEAK_RSS_KB=()
# One pcbulk run of binary $2 (labelled $1): records its time and peak RSS.
pcbulk_run() {
    local label=$1 bin=$2 run=$3
    local dir=$TMP/pcbulk-$label-$run   # fresh results path, journal and list of finished runs per run
    mkdir -p "$dir"
    local start end rc=0
    start=$(date +%s.%N)
    PCBULK_ACCESS_TOKEN=bench PCBULK_STATE_DIR="$dir/state" /usr/bin/time -v -o "$dir/time.txt" \
        "$bin" apply "$CSV" --base-url "$URL" --rate 1000000 --concurrency "$CONC" \
        --out "$dir/results.csv" "${APPLY_EXTRA[@]}" \
        </dev/null >"$dir/stdout.txt" 2>"$dir/stderr.txt" || rc=$?
    end=$(date +%s.%N)
    if [[ $rc != 0 ]]; then
        tail -n 30 "$dir/stderr.txt" >&2
        die "pcbulk ($label) run $run exited $rc"
    fi
    # Every data line must be 'succeeded' (the results start with a UTF-8 BOM).
    if ! python3 - "$dir/results.csv" "$ROWS" >"$dir/check.txt" 2>&1 <<'PY'
import csv, sys
from collections import Counter
path, rows = sys.argv[1], int(sys.argv[2])
with open(path, newline="", encoding="utf-8-sig") as f:
    r = csv.reader(f)
    header = [h.strip().lower() for h in next(r)]
    col = header.index("status")
    seen = Counter(row[col] for row in r)
total = sum(seen.values())
if total != rows or seen["succeeded"] != rows:
    sys.exit(f"{path}: {total} data lines, statuses {dict(seen)}; expected {rows} succeeded")
PY
    then
        cat "$dir/check.txt" >&2
        tail -n 30 "$dir/stderr.txt" >&2
        die "pcbulk ($label) run $run did not succeed on every row"
    fi
    local secs rss calls
    secs=$(awk -v s="$start" -v e="$end" 'BEGIN { printf "%.3f", e - s }')
    rss=$(awk -F': ' '/Maximum resident set size/ { print $2 }' "$dir/time.txt")
    calls=$(awk -v n="$ROWS" -v s="$secs" 'BEGIN { printf "%.1f", 2 * n / s }')
    log "pcbulk ($label) run $run: ${secs}s, $calls calls/s, peak RSS $((rss / 1024)) MiB"
    local best=${BEST_SECS[$label]:-}
    if [[ -z $best ]] || awk -v a="$secs" -v b="$best" 'BEGIN { exit !(a < b) }'; then
        BEST_SECS[$label]=$secs
    fi
    if (( rss > ${PEAK_RSS_KB[$label]:-0} )); then PEAK_RSS_KB[$label]=$rss; fi
    rm -f "$dir/results.csv"      # keep /tmp small on big runs
}

for run in $(seq "$RUNS"); do
    # Side by side: the two builds alternate, so a noisy minute falls on both.
    if [[ -n $BEFORE ]]; then pcbulk_run before "$BEFORE" "$run"; fi
    for label in "${ALSO_LABELS[@]}"; do pcbulk_run "$label" "${ALSO_BIN[$label]}" "$run"; done
    pcbulk_run current "$BIN" "$run"
done

# ---------------------------------------------------------------------------------------------
# 7. Report
# ---------------------------------------------------------------------------------------------
# "calls/s rows/s seconds RSS-MiB ratio" of the build labelled $1.
figures() {
    local secs=${BEST_SECS[$1]} kb=${PEAK_RSS_KB[$1]}
    local calls
    calls=$(awk -v n="$ROWS" -v s="$secs" 'BEGIN { printf "%.1f", 2 * n / s }')
    awk -v c="$calls" -v n="$ROWS" -v s="$secs" -v k="$kb" -v o="$OHA_BEST" -v skip="$SKIP_OHA" \
        'BEGIN { printf "%s %.1f %s %.1f %s", c, n / s, s, k / 1024, (skip == 1 ? "n/a" : sprintf("%.3f", c / o)) }'
}
read -r PC_CALLS PC_ROWS SECS RSS_MIB RATIO <<<"$(figures current)"
if [[ $SKIP_OHA == 1 ]]; then OHA_SHOW="skipped"; else OHA_SHOW=$OHA_BEST; fi
BEFORE_LINES=
if [[ -n $BEFORE ]]; then
    read -r B_CALLS B_ROWS B_SECS B_RSS B_RATIO <<<"$(figures before)"
    BEFORE_LINES="
  before: pcbulk calls/s      $B_CALLS   (${B_SECS}s for $ROWS rows), $B_ROWS rows/s, peak RSS $B_RSS MiB
  before: ratio pcbulk / oha  $B_RATIO
  before: $PCBULK_BIN_BEFORE (sha256 $BEFORE_SHA)"
fi
for label in "${ALSO_LABELS[@]}"; do
    read -r B_CALLS B_ROWS B_SECS B_RSS B_RATIO <<<"$(figures "$label")"
    BEFORE_LINES+="
  $label: pcbulk calls/s      $B_CALLS   (${B_SECS}s for $ROWS rows), $B_ROWS rows/s, peak RSS $B_RSS MiB
  $label: ratio pcbulk / oha  $B_RATIO
  $label: ${ALSO_SRC[$label]} (sha256 ${ALSO_SHA[$label]})"
done

cat <<EOF

wire benchmark (best of $RUNS)
  oha requests/s (GET)        $OHA_SHOW
  pcbulk calls/s (GET+PUT)    $PC_CALLS   (${SECS}s for $ROWS rows)
  pcbulk rows/s               $PC_ROWS
  pcbulk peak RSS             $RSS_MIB MiB   (max over runs)
  ratio pcbulk / oha          $RATIO$BEFORE_LINES

parameters
  rows=$ROWS concurrency=$CONC runs=$RUNS oha_requests=$OHA_REQUESTS url=$URL cpus=$(nproc)
  oha: $OHA_VERSION  $([[ $SKIP_OHA == 1 ]] && echo skipped || echo "oha ${OHA_NOTUI[*]} ${OHA_JSON[*]} -n $OHA_REQUESTS -c $CONC")
  nginx: $NGINX_VERSION, worker_processes 1, keepalive_requests 1000000
  pcbulk: $BIN_SRC (sha256 $BIN_SHA) apply <csv> --base-url $URL --rate 1000000 --concurrency $CONC ${APPLY_EXTRA[*]}
  pcbulk commit: $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)$(git -C "$ROOT" diff --quiet HEAD 2>/dev/null || echo ' (dirty tree)')
EOF
