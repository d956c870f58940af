#!/usr/bin/env bash
# The HTTPS listener side by side with nginx (README "Performance"), on loopback, bounded: both
# present the same P-256 certificate with TLS 1.2 and 1.3 and answer GET /health with a small
# JSON body (flowgresd's /health asks the database nothing), measured
#   - keep-alive: wrk's connections reused for every request (TLS record throughput),
#   - new handshakes: "Connection: close" on every request, so each is a new TLS handshake
#     (wrk offers the session of the connection before: resumption counts, as for browsers).
# wrk names the host of its URL in SNI and cannot resolve another name to 127.0.0.1, so the name
# is localhost: the platform's certificate. A custom domain's handshake differs by one lookup
# in the in-memory SNI cache (tests/integration/certificates_test.py covers that path).
# Each configuration is run ROUNDS times (default 3), the two servers taking turns in a rotating
# order, and the medians of the rounds are compared. Settings: DURATION (s per run, default 5),
# ROUNDS (default 3), CONNECTIONS (default 64).
set -euo pipefail
cd "$(dirname "$0")/.."
ulimit -n 65536 2>/dev/null || true
DURATION=${DURATION:-5}
source bench/lib.sh

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$root/tls.key" -out "$root/tls.pem" \
    -days 2 -subj "/CN=localhost" -addext "subjectAltName=DNS:localhost" 2>/dev/null
tls_port=$(free_port)
start_cluster_and_daemon --tls_port "$tls_port" --tls_cert_file "$root/tls.pem" --tls_key_file "$root/tls.key"
for _ in $(seq 1 100); do curl -sf --cacert "$root/tls.pem" "https://localhost:$tls_port/health" >/dev/null && break; sleep 0.1; done

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
curl -sf --cacert "$root/tls.pem" "https://localhost:$tls_port/health" | jq -e '.data.status == "ok"' >/dev/null ||
    { echo "flowgresd's HTTPS listener did not answer"; tail -5 "$root/flowgresd.log"; exit 1; }

for mode in keepalive handshake; do
    extra=()
    [ "$mode" = handshake ] && extra=(-H "Connection: close")
    echo "== $(nproc) cores; wrk -t$threads -c$connections -d${duration}s, $rounds rounds; HTTPS, $mode"
    for round in $(seq 1 "$rounds"); do
        order=(nginx flowgresd)
        for turn in 0 1; do
            server=${order[$(((round - 1 + turn) % 2))]}
            port=$([ "$server" = nginx ] && echo "$nginx_tls_port" || echo "$tls_port")
            run_and_keep "${server}_${mode}_r$round" "https://localhost:$port/health" "${extra[@]}" --timeout 10s
        done
    done
    for server in nginx flowgresd; do combine_rounds "${server}_$mode"; done
done

echo
for mode in keepalive handshake; do
    echo "HTTPS $mode: flowgresd / nginx $(ratio "flowgresd_$mode" "nginx_$mode") (requests/s; target at least 0.8)"
done
