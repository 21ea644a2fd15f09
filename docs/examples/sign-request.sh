#!/usr/bin/env bash
# Sends one request signed with an API key's Ed25519 key (RFC 9421), as
# Ironcase wants for the sensitive requests of a key registered with a
# public key: the signature covers "@method", "@target-uri" and
# "content-digest" (RFC 9530), with `created` and `keyid` (the key's id).
#
#   sign-request.sh METHOD URL BODY_FILE KEY_ID API_KEY PRIVATE_KEY_PEM
#
# The key pair, and the public key to register (`"public_key"` when the API
# key is created, or PATCH /api/v1/api-keys/{id}):
#   openssl genpkey -algorithm ed25519 -out signing.pem
#   openssl pkey -in signing.pem -pubout -outform DER | tail -c 32 | base64
#
# URL is what the server calls its public URL (--public-url) followed by
# the path and query. Needs openssl (1.1.1 or later), curl and base64.
set -euo pipefail
method="$1" url="$2" body="$3" keyid="$4" apikey="$5" pem="$6"

digest="sha-256=:$(openssl dgst -sha256 -binary "$body" | base64 | tr -d '\n'):"
params="(\"@method\" \"@target-uri\" \"content-digest\");created=$(date +%s);keyid=\"$keyid\";alg=\"ed25519\""
base="$(mktemp)"
trap 'rm -f "$base"' EXIT
printf '"@method": %s\n"@target-uri": %s\n"content-digest": %s\n"@signature-params": %s' \
  "$method" "$url" "$digest" "$params" >"$base"
signature="$(openssl pkeyutl -sign -rawin -inkey "$pem" -in "$base" | base64 | tr -d '\n')"

curl -sS -X "$method" "$url" \
  -H "authorization: Bearer $apikey" \
  -H 'content-type: application/json' \
  -H "content-digest: $digest" \
  -H "signature-input: sig1=$params" \
  -H "signature: sig1=:$signature:" \
  --data-binary @"$body"
