#!/usr/bin/env bash
# A walkthrough of electric_auth on a throwaway cluster: secure mode with a fresh RS256 key
# pair, a token verified, an expired and a tampered token rejected, then insecure mode. Tokens
# are minted with the openssl CLI. The cluster is stopped and removed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/common.sh
PORT=${EA_DEMO_PORT:-54330}
NAME=ea-demo
work=$(mktemp -d /tmp/ea-demo-keys.XXXXXX)
cleanup() { scripts/cluster.sh stop $NAME; rm -rf "$work" /tmp/$NAME-data /tmp/$NAME-sock; echo "demo: cluster stopped and removed"; }
trap cleanup EXIT

b64url() { openssl base64 -A | tr '+/' '-_' | tr -d '='; }
# sign_rs256 PAYLOAD_JSON: a JWT signed with the demo's private key.
sign_rs256() {
  local input
  input="$(printf '%s' '{"alg":"RS256","typ":"JWT"}' | b64url).$(printf '%s' "$1" | b64url)"
  printf '%s.%s' "$input" "$(printf '%s' "$input" | openssl dgst -sha256 -sign "$work/private.pem" | b64url)"
}

openssl genrsa -out "$work/private.pem" 2048 2>/dev/null
openssl rsa -in "$work/private.pem" -pubout -out "$work/public.pem" 2>/dev/null
now=$(date +%s)
good=$(sign_rs256 "{\"sub\":\"alice\",\"iat\":$now,\"exp\":$((now + 3600)),\"role\":\"editor\"}")
expired=$(sign_rs256 "{\"sub\":\"alice\",\"iat\":$((now - 7200)),\"exp\":$((now - 3600))}")
forged_payload=$(printf '%s' "{\"sub\":\"mallory\",\"iat\":$now,\"exp\":$((now + 3600))}" | b64url)
tampered="$(echo "$good" | cut -d. -f1).$forged_payload.$(echo "$good" | cut -d. -f3)"
unsigned="$(printf '%s' '{"alg":"none"}' | b64url).$(printf '%s' '{"sub":"dev-user"}' | b64url)."

scripts/cluster.sh start $NAME "$PORT"
echo "demo: cluster on port $PORT (socket /tmp/$NAME-sock), running as postgres"
as_postgres psql -X -q -h /tmp/$NAME-sock -p "$PORT" -d postgres \
  -v ON_ERROR_STOP=0 -v pem="$(cat "$work/public.pem")" -v good="$good" -v expired="$expired" \
  -v tampered="$tampered" -v unsigned="$unsigned" -a <<'SQL'
CREATE EXTENSION electric_auth;
-- Secure mode (the default): RS256 with a freshly generated public key.
SET electric_auth.jwt_alg = 'RS256';
SELECT set_config('electric_auth.jwt_key', :'pem', false) IS NOT NULL AS key_configured;
-- A valid token: its claims and its user id.
SELECT jsonb_pretty(electric_auth.verify(:'good')) AS claims;
SELECT electric_auth.user_id(:'good') AS user_id;
-- An expired token, and a token whose payload was changed after signing:
SELECT electric_auth.user_id(:'expired');
SELECT electric_auth.user_id(:'tampered');
-- Insecure mode (development only) accepts an unsigned token.
RESET electric_auth.jwt_alg;
RESET electric_auth.jwt_key;
SET electric_auth.mode = insecure;
SELECT electric_auth.user_id(:'unsigned') AS user_id;
SQL
