#!/usr/bin/env bash
# soak.sh DURATION [OUTDIR]: a mixed-load soak of a locally started Confab.
#
# Builds confab, serves it on loopback with a fresh database, and runs for
# DURATION (e.g. 10m):
#   - `confab bench chat`: users on sockets and REST, typing, receipts,
#     pings, reconnects (half without a close frame) with recovery, and an
#     exactly-once check of every acknowledged message at the end;
#   - slow clients: sockets that join a busy conversation and never read,
#     so the server must shed and close them (4008) without slowing anyone;
#   - a sampler: the server's VmRSS from /proc/PID/status, goroutines and
#     heap from /metrics, every 30 s.
# Then it stops the server with SIGTERM, checks the database file, and
# prints a summary. Everything it writes goes to OUTDIR (default: a new
# temp dir). See docs/soak.md for what to look at.
set -euo pipefail

DURATION=${1:?usage: docs/soak.sh DURATION [OUTDIR]}
OUT=${2:-$(mktemp -d /tmp/confab-soak.XXXXXX)}
PORT=${PORT:-18000}
USERS=${USERS:-300}
ROOMS=${ROOMS:-150}
SLOW=${SLOW:-20}           # slow sockets open at any moment
SAMPLE_EVERY=${SAMPLE_EVERY:-30}
URL=http://127.0.0.1:$PORT
mkdir -p "$OUT"
cd "$(dirname "$0")/.."

go build -o "$OUT/confab" .
HOST=127.0.0.1 PORT=$PORT DATABASE_PATH="$OUT/confab.db" LOG_LEVEL=warn \
	REGISTRATIONS_PER_MINUTE=100000 REQUESTS_PER_SECOND=0 "$OUT/confab" serve >"$OUT/server.log" 2>&1 &
PID=$!
trap 'kill $(jobs -p) 2>/dev/null || true' EXIT
until curl -sf "$URL/healthz" >/dev/null; do sleep 0.2; done
echo "server pid $PID ($(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet 2>/dev/null || echo ', with uncommitted changes')), output in $OUT"

# The sampler: one line every SAMPLE_EVERY seconds while the server runs.
sample() {
	local m
	m=$(curl -sf "$URL/metrics" || true)
	printf '%s rss_kb=%s goroutines=%s heap_inuse_bytes=%s ws_open=%s\n' "$(date -u +%H:%M:%S)" \
		"$(awk '/^VmRSS:/ {print $2}' "/proc/$PID/status")" \
		"$(awk '/^go_goroutines / {print $2}' <<<"$m")" \
		"$(awk '/^go_memstats_heap_inuse_bytes / {printf "%d", $2}' <<<"$m")" \
		"$(awk '/^confab_ws_connections / {print $2}' <<<"$m")"
}
(while kill -0 "$PID" 2>/dev/null; do sample; sleep "$SAMPLE_EVERY"; done) >"$OUT/memory.txt" &

# Slow clients: two accounts and a conversation of their own; one of them
# posts 4,000-character messages over REST, the other holds SLOW sockets
# on /ws/conversations/ID/ (joined by the URL) that never read a byte.
# The server's send buffer (up to 4 MiB) fills within seconds, then the
# socket's queue, and the server closes it (4008); each one reconnects
# every 90 s (the server also drops sockets silent for 60 s).
token() { sed 's/.*"access":"\([^"]*\)".*/\1/'; }
reg() { curl -sf -X POST "$URL/api/auth/register/" -d "{\"username\":\"$1\",\"password\":\"soak-password-1\"}"; }
SLOW_A=$(reg "slow_a_$$"); SLOW_B=$(reg "slow_b_$$")
A_TOKEN=$(token <<<"$SLOW_A"); B_TOKEN=$(token <<<"$SLOW_B")
B_ID=$(sed 's/.*"user":{"id":\([0-9]*\).*/\1/' <<<"$SLOW_B")
CONV=$(curl -sf -X POST "$URL/api/conversations/" -H "Authorization: Bearer $A_TOKEN" \
	-d "{\"participant_ids\":[$B_ID]}" | sed 's/^{"id":\([0-9]*\).*/\1/')
slow_socket() {
	while kill -0 "$PID" 2>/dev/null; do
		exec 3<>"/dev/tcp/127.0.0.1/$PORT"
		printf 'GET /ws/conversations/%s/?token=%s HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: c29hay1zbG93LWNsaWVudA==\r\nSec-WebSocket-Version: 13\r\n\r\n' \
			"$CONV" "$B_TOKEN" >&3
		sleep 90
		exec 3>&-
	done
}
for _ in $(seq "$SLOW"); do slow_socket & done
printf '{"content":"%s"}' "$(head -c 4000 /dev/zero | tr '\0' s)" >"$OUT/slow-message.json"
(while kill -0 "$PID" 2>/dev/null; do
	curl -s -H "Authorization: Bearer $A_TOKEN" -H 'Content-Type: application/json' \
		-d @"$OUT/slow-message.json" $(yes "$URL/api/conversations/$CONV/messages/" | head -40) >/dev/null || true
	sleep 0.5
done) &

# The mixed load, checked for exactly-once delivery.
set +e
"$OUT/confab" bench chat --url "$URL" --users "$USERS" --rooms "$ROOMS" --duration "$DURATION" \
	--reconnect 0.05 --rest 0.3 --pid "$PID" --progress 30s >"$OUT/bench.txt" 2>"$OUT/bench-progress.txt"
BENCH=$?
set -e
sleep "$SAMPLE_EVERY" # one more sample, after the load
sample >>"$OUT/memory.txt"
METRICS=$(curl -sf "$URL/metrics")
kill -TERM "$PID"
SERVER=0
wait "$PID" || SERVER=$?

echo "== bench chat (exit $BENCH)"; cat "$OUT/bench.txt"
echo "== server memory every ${SAMPLE_EVERY}s"; cat "$OUT/memory.txt"
echo "== sockets closed by the server, by code"
grep '^confab_ws_connections_closed_total' <<<"$METRICS" | grep -v ' 0$' || true
echo "== server exit after SIGTERM: $SERVER; errors logged: $(grep -c 'level=ERROR' "$OUT/server.log" || true)"
echo "== integrity_check: $(sqlite3 "file:$OUT/confab.db?mode=ro" 'PRAGMA integrity_check')"
[ "$BENCH" -eq 0 ] && [ "$SERVER" -eq 0 ]
