#!/usr/bin/env bash
# The monthly job, start to end, against a sandbox on this machine: export the subscriptions one
# reseller supports, hand them to another, check what that would change, apply it, and put it back.
#
#   bash samples/walkthrough.sh          (from the project's folder, with pcbulk on the PATH)
#
# Nothing is sent anywhere but 127.0.0.1. Every file goes to a new temporary folder.
set -euo pipefail

PCBULK=${PCBULK:-pcbulk}
DIR=$(mktemp -d)
cd "$DIR"

# A sandbox that keeps its tenant between commands (--sandbox starts a fresh one each time).
"$PCBULK" sandbox --listen 127.0.0.1:0 >sandbox.out 2>/dev/null &
SANDBOX=$!
trap 'kill $SANDBOX 2>/dev/null' EXIT
until grep -q 'listening on' sandbox.out 2>/dev/null; do sleep 0.1; done
export PCBULK_BASE_URL=$(sed -n 's/^pcbulk sandbox listening on //p' sandbox.out)
export PCBULK_ACCESS_TOKEN=sandbox

FABRIKAM_RESELLERS=e0000002-0000-4000-8000-000000000002

# 1. Export: every subscription Fabrikam Resellers supports today, with its customer's name. It
#    ends with exit 1: Tailspin Toys, a customer without a delegated admin role, cannot be read.
"$PCBULK" export support-contact --where support_tenant_id=$FABRIKAM_RESELLERS --out fabrikam.csv \
    --rate 100 || true

# 2. Edit: hand them to Trey Research (here with awk; in practice, in Excel). The columns:
#    customer_id,subscription_id,support_tenant_id,support_mpn_id,name,... and pcbulk_export last.
awk -F, -v OFS=, 'NR > 1 { $3 = "e0000001-0000-4000-8000-000000000001"; $4 = "4391507"; $5 = "Trey Research" } 1' \
    fabrikam.csv >to-trey.csv

# 3. Plan: what applying would change, row by row (reads only).
"$PCBULK" plan to-trey.csv --rate 100 || true

# 4. Apply it, and keep the results. Exit 1: the service refuses a support contact change on a
#    New Commerce subscription, and those rows are `failed` with its code.
"$PCBULK" apply to-trey.csv --rate 100 --yes || true

# 5. Undo: a file that puts every changed contact back, applied like any other.
"$PCBULK" undo to-trey.results.csv
"$PCBULK" apply to-trey.undo.csv --rate 100 --yes

echo "the files are in $DIR"
