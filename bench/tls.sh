#!/usr/bin/env bash
# The HTTPS listener side by side with nginx (README "Performance"), on loopback, bounded: both
# present the same P-256 certificate for a custom domain (shop.bench.test; flowgresd finds it by
# SNI in its cache, read once from the database) with TLS 1.2 and 1.3 and answer GET /health with
# a small JSON body (flowgresd's /health asks the database nothing), measured
#   - keep-alive: wrk's connections reused for every request (TLS record throughput),
#   - new handshakes: "Connection: close" on every request, so each is a new TLS handshake
#     (wrk offers the session of the connection before: resumption counts, as for browsers).
# wrk resolves the name it sends in SNI: it runs in a mount namespace of its own whose
# /etc/hosts maps shop.bench.test to 127.0.0.1 (unshare; nothing changes outside it).
# Each configuration is run ROUNDS times (default 3), the two servers taking turns in a rotating
# order, and the medians of the rounds are compared. Settings: DURATION (s per run, default 5),
# ROUNDS (default 3), CONNECTIONS (default 64).
set -euo pipefail
cd "$(dirname "$0")/.."
ulimit -n 65536 2>/dev/null || true
DURATION=${DURATION:-5}
source bench/lib.sh
name=shop.bench.test

# wrk in a mount namespace where the name resolves to 127.0.0.1 (as root, or in a user namespace).
cp /etc/hosts "$root/hosts" && echo "127.0.0.1 $name" >>"$root/hosts"
unshare_flags=(-m)
[ "$(id -u)" = 0 ] || unshare_flags=(-r -m)
mkdir -p "$root/bin"
cat >"$root/bin/wrk" <<SHIM
#!/bin/sh
exec unshare ${unshare_flags[*]} sh -c 'mount --bind "$root/hosts" /etc/hosts && exec /usr/bin/wrk "\$@"' wrk "\$@"
SHIM
chmod +x "$root/bin/wrk"
export PATH="$root/bin:$PATH"
unshare "${unshare_flags[@]}" sh -c "mount --bind '$root/hosts' /etc/hosts && getent hosts $name" >/dev/null ||
    { echo "unshare with a mount namespace is not available here: the bench needs one"; exit 1; }

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$root/tls.key" -out "$root/tls.pem" \
    -days 2 -subj "/CN=$name" -addext "subjectAltName=DNS:$name,DNS:localhost" 2>/dev/null
master_keys=$(build/flowgres-provision keygen --id bench)
tls_port=$(free_port)
start_cluster_and_daemon --tls_port "$tls_port" --tls_cert_file "$root/tls.pem" --tls_key_file "$root/tls.key" \
    --master_keys "$master_keys"
for _ in $(seq 1 100); do curl -sf --cacert "$root/tls.pem" "https://localhost:$tls_port/health" >/dev/null && break; sleep 0.1; done

# The custom domain: bound to an app, then made active with the certificate as an ACME order
# would have left it (the key sealed as the daemon seals it: AES-256-GCM, its context as AAD).
bench_psql -c "update flowgres.workspaces set plan = 'enterprise' where id = '$workspace_id'" >/dev/null
app_id=$(curl -sf -H "Authorization: Bearer $key" -H 'Content-Type: application/json' -d '{"name":"tls bench"}' \
    "$api/workspaces/$workspace_id/apps" | jq -r .data.id)
domain_id=$(curl -sf -H "Authorization: Bearer $key" -H 'Content-Type: application/json' -d "{\"domain\":\"$name\"}" \
    "$api/apps/$app_id/domains" | jq -r .data.id)
sealed=$(python3 - "$master_keys" "$root/tls.key" "domain_certificate:$domain_id" <<'PY'
import base64, os, sys
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
key_id, key = sys.argv[1].split("=", 1)
raw = base64.urlsafe_b64decode(key.replace("+", "-").replace("/", "_") + "=" * (-len(key) % 4)) if len(key) != 64 else bytes.fromhex(key)
nonce = os.urandom(12)
sealed = AESGCM(raw).encrypt(nonce, open(sys.argv[2], "rb").read(), sys.argv[3].encode())
b64 = lambda data: base64.urlsafe_b64encode(data).rstrip(b"=").decode()
print(f"enc:v1:{key_id}:{b64(nonce)}:{b64(sealed)}")
PY
)
bench_psql -v chain="$(cat "$root/tls.pem")" -v sealed="$sealed" -v id="$domain_id" >/dev/null <<'SQL'
update flowgres.app_domains
set status = 'active', activated_at = now(), verified_at = now(), ssl_status = 'issued', certificate_chain = :'chain',
    certificate_key_sealed = :'sealed', ssl_issued_at = now(), ssl_expires_at = now() + interval '2 days'
where id = :'id';
SQL


nginx_tls_port=$(free_port)
mkdir -p "$root/nginx-tls"
cat >"$root/nginx-tls/nginx.conf" <<CONF
worker_processes $threads;
pid $root/nginx-tls/nginx.pid;
error_log $root/nginx-tls/error.log;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_requests 1000000;
    client_body_temp_path $root/nginx-tls;
    proxy_temp_path $root/nginx-tls;
    fastcgi_temp_path $root/nginx-tls;
    uwsgi_temp_path $root/nginx-tls;
    scgi_temp_path $root/nginx-tls;
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_session_cache shared:SSL:10m;
    server {
        listen 127.0.0.1:$nginx_tls_port ssl;
        ssl_certificate $root/tls.pem;
        ssl_certificate_key $root/tls.key;
        location / { default_type application/json; return 200 '{"code":"OK","data":{"status":"ok"}}'; }
    }
}
CONF
nginx -c "$root/nginx-tls/nginx.conf" -p "$root/nginx-tls"
cleanups+=("[ -f '$root/nginx-tls/nginx.pid' ] && kill \"\$(cat '$root/nginx-tls/nginx.pid')\"")
for _ in $(seq 1 50); do curl -sf --cacert "$root/tls.pem" "https://localhost:$nginx_tls_port/health" >/dev/null && break; sleep 0.1; done
curl -sf --cacert "$root/tls.pem" --resolve "$name:$tls_port:127.0.0.1" "https://$name:$tls_port/health" |
    jq -e '.data.status == "ok"' >/dev/null ||
    { echo "flowgresd's HTTPS listener did not answer for $name"; tail -5 "$root/flowgresd.log"; exit 1; }

for mode in keepalive handshake; do
    extra=()
    [ "$mode" = handshake ] && extra=(-H "Connection: close")
    echo "== $(nproc) cores; wrk -t$threads -c$connections -d${duration}s, $rounds rounds; HTTPS, $mode"
    for round in $(seq 1 "$rounds"); do
        order=(nginx flowgresd)
        for turn in 0 1; do
            server=${order[$(((round - 1 + turn) % 2))]}
            port=$([ "$server" = nginx ] && echo "$nginx_tls_port" || echo "$tls_port")
            run_and_keep "${server}_${mode}_r$round" "https://$name:$port/health" "${extra[@]}" --timeout 10s
        done
    done
    for server in nginx flowgresd; do combine_rounds "${server}_$mode"; done
done

echo "certificate reads for $name: $(curl -sf "http://127.0.0.1:$daemon_port/metrics" | awk '/^flowgres_tls_certificate_loads_total / {print $2}') (one per worker at most; every other handshake from memory)"
echo
for mode in keepalive handshake; do
    echo "HTTPS $mode: flowgresd / nginx $(ratio "flowgresd_$mode" "nginx_$mode") (requests/s; target at least 0.8)"
done
