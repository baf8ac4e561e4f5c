#!/usr/bin/env bash
# A decision, its response, its trace and a refused call, over JSON REST with curl and jq.
#
#   KAIREON_API_KEY=krn_... ./decide.sh
#
# KAIREON_URL (default http://127.0.0.1:3000), KAIREON_TENANT (default demo), KAIREON_API_KEY.
set -euo pipefail
url="${KAIREON_URL:-http://127.0.0.1:3000}"
tenant="${KAIREON_TENANT:-demo}"
: "${KAIREON_API_KEY:?set KAIREON_API_KEY to a key of tenant $tenant}"

# Every call names its tenant and key; --fail-with-body makes a 4xx or 5xx end the script with the
# error body printed.
call() {
  curl -sS --fail-with-body -H "x-tenant-id: $tenant" -H "x-api-key: $KAIREON_API_KEY" \
    -H 'content-type: application/json' "$@"
}

# Recommend, traced: the answer carries a traceId.
answer=$(call "$url/api/v1/recommend" -d '{
  "customerId": "cust_12345", "channelId": "ch_email", "maxOffers": 3, "placement": "hero_offer",
  "attributes": {"tier": "gold", "device": "mobile"}, "trace": true}')
echo "$answer" | jq -r '"\(.recommendations | length) offers from \(.decisionFlowId):",
  (.recommendations[] | "  \(.rank). \(.offerId) score \(.score) creative \(.creativeId)")'

# Respond to the top offer. The same Idempotency-Key with the same body records it once, however often
# it is sent.
top=$(echo "$answer" | jq -c '.recommendations[0]')
trace_id=$(echo "$answer" | jq -r '.traceId')
body=$(jq -nc --argjson top "$top" --arg trace "$trace_id" '{customerId: "cust_12345", offerId: $top.offerId,
  channelId: $top.channelId, creativeId: $top.creativeId, outcomeType: "click", traceId: $trace}')
key="curl-example-$trace_id"
first=$(call "$url/api/v1/respond" -H "idempotency-key: $key" -d "$body")
again=$(call "$url/api/v1/respond" -H "idempotency-key: $key" -d "$body")
echo "recorded $(echo "$first" | jq -r '.outcomeType') as $(echo "$first" | jq -r '.id'); retried: $(echo "$again" | jq -r '.id')"

# The decision's trace: each stage of the flow and what it did.
call "$url/api/v1/decision-traces/$trace_id" | jq -r '"trace \(.traceId): " + ([.stages[].name] | join(" → ")) + " in \(.totalDuration) ms"'

# A refused call: a 400 whose body names the field (no --fail-with-body here, the status is expected).
curl -sS -w '\nHTTP %{http_code}\n' -H "x-tenant-id: $tenant" -H "x-api-key: $KAIREON_API_KEY" \
  -H 'content-type: application/json' "$url/api/v1/recommend" -d '{"channelId": "ch_email"}'
