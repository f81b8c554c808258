#!/usr/bin/env bash
# soak-faults.sh DURATION [OUTDIR]: three Confab nodes under a mixed load
# while their services and the nodes themselves break.
#
# Builds confab, starts a redis-server of its own, toxiproxy in front of
# Postgres, and three nodes on one fresh database (through the proxy) and
# that Redis, then runs `confab bench chat` against the three for DURATION
# (e.g. 10m). Meanwhile, every 20 to 40 s (random), one fault:
#   - redis: Redis stops (SIGKILL, nothing saved) and starts again empty
#     1 to 3 s later;
#   - postgres: the proxy cuts every connection to Postgres and refuses new
#     ones for 3 to 8 s (the database is gone, as the nodes see it);
#   - node: one node, chosen at random, is killed (SIGKILL) and started
#     again on its port 1 to 3 s later.
# The bench retries what the contract says to retry (503 and unavailable
# error frames with the same client_id, reconnects with last_message_id)
# and checks, at the end, that every acknowledged message reached every
# member exactly once, in order. See docs/soak.md.
#
# Needs Go, curl, psql, redis-server and toxiproxy-server (as .ci/run
# installs it), and a Postgres where PG (default
# postgres://confab:confab@127.0.0.1:5432) may create a database.
set -euo pipefail

DURATION=${1:?usage: docs/soak-faults.sh DURATION [OUTDIR]}
OUT=${2:-$(mktemp -d /tmp/confab-soak-faults.XXXXXX)}
PG=${PG:-postgres://confab:confab@127.0.0.1:5432}
PG_HOSTPORT=${PG_HOSTPORT:-127.0.0.1:5432}
USERS=${USERS:-150}
ROOMS=${ROOMS:-80}
REDIS_PORT=${REDIS_PORT:-6397}
TOXI_PORT=${TOXI_PORT:-18474}
PORTS=(18101 18102 18103)
SEED=${SEED:-$RANDOM}
case $DURATION in
*m) secs=$((${DURATION%m} * 60)) ;;
*s) secs=${DURATION%s} ;;
*) echo "DURATION must be in whole minutes or seconds (10m, 90s)" >&2; exit 2 ;;
esac
mkdir -p "$OUT"
cd "$(dirname "$0")/.."
RANDOM=$SEED

go build -o "$OUT/confab" .
psql -q "$PG/postgres" -c 'DROP DATABASE IF EXISTS confab_soak_faults' -c 'CREATE DATABASE confab_soak_faults'

log() { printf '%s %s\n' "$(date -u +%H:%M:%S)" "$*" | tee -a "$OUT/faults.txt"; }

start_redis() {
	redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no >>"$OUT/redis.log" 2>&1 &
	echo $! >"$OUT/redis.pid"
}
start_redis
toxiproxy-server -host 127.0.0.1 -port "$TOXI_PORT" >"$OUT/toxiproxy.log" 2>&1 &
TOXI_PID=$!
trap 'kill $(jobs -p) 2>/dev/null; kill "$(cat "$OUT/redis.pid")" 2>/dev/null; true' EXIT
until curl -sf "http://127.0.0.1:$TOXI_PORT/version" >/dev/null; do sleep 0.1; done
PG_PROXY=$(curl -sf -X POST "http://127.0.0.1:$TOXI_PORT/proxies" \
	-d "{\"name\":\"pg\",\"listen\":\"127.0.0.1:0\",\"upstream\":\"$PG_HOSTPORT\"}" | sed 's/.*"listen":"\([^"]*\)".*/\1/')
pg_proxy() { curl -sf -X POST "http://127.0.0.1:$TOXI_PORT/proxies/pg" -d "{\"enabled\":$1}" >/dev/null; }

# Same settings on every node; the limits are raised because every
# socket of the bench comes from one address.
node_env=(HOST=127.0.0.1 LOG_LEVEL=warn "DATABASE_PATH=$OUT/unused.db"
	"DATABASE_URL=postgres://confab:confab@$PG_PROXY/confab_soak_faults?sslmode=disable"
	"REDIS_URL=redis://127.0.0.1:$REDIS_PORT/0" JWT_SECRET=soak-faults-secret-of-at-least-32-bytes
	REGISTRATIONS_PER_MINUTE=100000 LOGIN_ATTEMPTS_PER_MINUTE=100000 REQUESTS_PER_SECOND=0
	WS_FRAMES_PER_SECOND=100000 WS_FRAME_BURST=100000 WS_MAX_CONNS_PER_IP=100000 WS_MAX_CONNS_PER_USER=100000)
NODE_PIDS=()
start_node() {
	env "${node_env[@]}" PORT="${PORTS[$1]}" "$OUT/confab" serve >>"$OUT/node$1.log" 2>&1 &
	NODE_PIDS[$1]=$!
	until curl -sf "http://127.0.0.1:${PORTS[$1]}/healthz" >/dev/null; do sleep 0.1; done
}
for i in 0 1 2; do start_node "$i"; done
URLS=$(printf 'http://127.0.0.1:%s,' "${PORTS[@]}")
URLS=${URLS%,}
log "nodes ${NODE_PIDS[*]} on ${PORTS[*]}, Postgres through $PG_PROXY, Redis on $REDIS_PORT, seed $SEED, output in $OUT"

set +e
"$OUT/confab" bench chat --url "$URLS" --users "$USERS" --rooms "$ROOMS" --duration "$DURATION" \
	--rest 0.3 --progress 10s >"$OUT/bench.txt" 2>&1 &
BENCH=$!

# Faults start once the users act (registering 150 accounts takes a
# while), and none comes in the last 40 s of acting: the last one heals
# before the bench stops and drains.
until grep -q 'acting' "$OUT/bench.txt" 2>/dev/null || ! kill -0 "$BENCH" 2>/dev/null; do sleep 1; done
stop_at=$((SECONDS + secs - 40))
faults=0
while kill -0 "$BENCH" 2>/dev/null; do
	sleep $((20 + RANDOM % 21))
	kill -0 "$BENCH" 2>/dev/null || break
	[ "$SECONDS" -lt "$stop_at" ] || continue
	faults=$((faults + 1))
	case $((RANDOM % 3)) in
	0)
		down=$((1 + RANDOM % 3))
		log "fault $faults: Redis killed, back empty in ${down}s"
		kill -9 "$(cat "$OUT/redis.pid")"
		wait "$(cat "$OUT/redis.pid")" 2>/dev/null
		sleep "$down"
		start_redis
		;;
	1)
		down=$((3 + RANDOM % 6))
		log "fault $faults: Postgres cut off for ${down}s"
		pg_proxy false
		sleep "$down"
		pg_proxy true
		;;
	2)
		i=$((RANDOM % 3))
		down=$((1 + RANDOM % 3))
		log "fault $faults: node $i (port ${PORTS[$i]}) killed, started again in ${down}s"
		kill -9 "${NODE_PIDS[$i]}"
		wait "${NODE_PIDS[$i]}" 2>/dev/null
		sleep "$down"
		start_node "$i"
		;;
	esac
done
wait "$BENCH"
status=$?
log "bench exited $status after $faults faults"
cat "$OUT/bench.txt"
for i in 0 1 2; do kill -TERM "${NODE_PIDS[$i]}" 2>/dev/null; done
wait "${NODE_PIDS[@]}" 2>/dev/null
exit "$status"
