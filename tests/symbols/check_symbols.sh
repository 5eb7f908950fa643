#!/usr/bin/env bash
# electric_auth.so must not clash with the OpenSSL that Postgres and pgcrypto load: it links
# AWS-LC statically with prefixed symbols, so it needs no libssl/libcrypto, imports no
# OpenSSL-named symbol, and exports none.
#   tests/symbols/check_symbols.sh PATH/TO/electric_auth.so
set -euo pipefail
so=$1
fail() { echo "check_symbols: FAILED: $*" >&2; exit 1; }
[ -f "$so" ] || fail "$so not found"
openssl_names='^(EVP|SSL|RSA|EC|ECDSA|BN|ERR|CRYPTO|OPENSSL|X509|PEM|HMAC|SHA[0-9]*|OBJ|ASN1|BIO|RAND|DH|DSA)_'
if readelf -d "$so" | grep NEEDED | grep -Eq 'libcrypto|libssl'; then
  fail "$so links libcrypto/libssl: $(readelf -d "$so" | grep NEEDED | tr -s ' ')"
fi
# AWS-LC declares a few optional allocator hooks (OPENSSL_memory_alloc, ...) as weak undefined
# symbols; they stay NULL unless something defines them. The system's OpenSSL must not: an
# imported name that libcrypto or libssl defines is the clash this check is for.
system_openssl=$(for lib in /lib/x86_64-linux-gnu/libcrypto.so.3 /lib/x86_64-linux-gnu/libssl.so.3; do
  [ -f "$lib" ] && nm -D --defined-only "$lib" | awk '{print $NF}'; done | sort -u)
[ -n "$system_openssl" ] || fail "cannot read the system's libcrypto/libssl symbols"
imported=$(nm -D --undefined-only "$so" | awk '{print $NF}' | grep -E "$openssl_names" | sort -u || true)
strong=$(nm -D --undefined-only "$so" | awk '$1 == "U" {print $NF}' | grep -E "$openssl_names" || true)
[ -z "$strong" ] || fail "imports OpenSSL-named symbols: $(echo "$strong" | head -5 | tr '\n' ' ')"
clash=$(comm -12 <(echo "$imported") <(echo "$system_openssl") | grep . || true)
[ -z "$clash" ] || fail "would resolve symbols from the system's OpenSSL: $(echo "$clash" | head -5 | tr '\n' ' ')"
exported=$(nm -D --defined-only "$so" | awk '{print $NF}' | grep -E "$openssl_names" || true)
[ -z "$exported" ] || fail "exports OpenSSL-named symbols: $(echo "$exported" | head -5 | tr '\n' ' ')"
# The check above is not vacuous: the library does contain AWS-LC, under its own prefix.
aws_lc=$( (nm "$so" 2>/dev/null || true) | grep -c 'aws_lc_' || true)
[ "$aws_lc" -gt 0 ] || fail "no prefixed AWS-LC symbol found in $so (is it built with aws-lc-rs?)"
echo "check_symbols: $so needs no libssl/libcrypto, exports no OpenSSL-named symbol, resolves none from the system's OpenSSL (weak hooks left unresolved: $(echo $imported)); $aws_lc prefixed AWS-LC symbols inside"
