#!/usr/bin/env bash
# How users script a rotation today: a certbot deploy hook that uploads the renewed pair with
# curl and points each domain at it. Used by benches/rotation.rs as the side-by-side baseline.
#   curl-deploy-hook.sh API_URL API_KEY FULLCHAIN PRIVKEY DOMAIN_ID...
set -euo pipefail
api=$1 key=$2 chain=$3 privkey=$4
shift 4
auth=(-H "Authorization: Bearer $key" -H "Ngrok-Version: 2" -H "Content-Type: application/json")
body=$(jq -n --rawfile c "$chain" --rawfile k "$privkey" '{certificate_pem: $c, private_key_pem: $k}')
cert_id=$(curl -sf "${auth[@]}" -X POST "$api/tls_certificates" -d "$body" | jq -r .id)
for domain in "$@"; do
  curl -sf "${auth[@]}" -X PATCH "$api/reserved_domains/$domain" -d "{\"certificate_id\": \"$cert_id\"}" >/dev/null
done
