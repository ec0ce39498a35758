#!/usr/bin/env bash
# Benchmark of the MTA hop (issue 6): messages per second and latency for
# small text mails, on one machine, through
#   (1) smtp-source -> smtp-sink                          the wire ceiling
#   (2) smtp-source -> Postfix -> smtp-sink               a plain relay hop, no sanitizing
#   (3) smtp-source -> mukaika serve -> smtp-sink         the sanitizing hop
# For (2) and (3) the clock stops when smtp-sink has received all N messages
# (its -c counter), not when smtp-source is done. Both hops write every
# message to disk and fsync it before answering 250 (Postfix's default;
# mukaika always does). Not a test, not part of ctest: it measures, it does
# not judge.
#
#   tests/bench/mta/run.sh [path/to/mukaika]     (default: build/gateway/mukaika)
#
# N=500 messages per run, SESSIONS=10 parallel sessions, LENGTH=2000 bytes
# (smtp-source -s 10 -m 500 -l 2000), RUNS=3 (the median is shown; the two
# hops take turns going first), LAT=50
# mails one at a time for latency. AV_TEMP_DIR=/path sets mukaika's
# [antivirus] temp_dir (libclamav's scratch files; default: /dev/shm when it
# is a tmpfs with room, else the system's temporary directory).
# BENCH_DIR=/path puts the work directory (spool, quarantine, Postfix's
# queue) on that file system (default /tmp). KEEP=1 keeps the work directory (Postfix's
# maillog, mukaika's log and audit log). Needs root (Postfix), postfix,
# smtp-source and smtp-sink (package postfix), python3. The Postfix instance
# is a throwaway one (tests/support/postfix_instance.sh), never the system's.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../../.." && pwd)"
bin="${1:-$repo/build/gateway/mukaika}"
n="${N:-500}" sessions="${SESSIONS:-10}" length="${LENGTH:-2000}" runs="${RUNS:-3}" lat="${LAT:-50}"
[ -x "$bin" ] || { echo "run.sh: no mukaika binary at $bin (build it, or pass its path)" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "run.sh: needs root (the Postfix instance)" >&2; exit 2; }
for t in /usr/sbin/smtp-source /usr/sbin/smtp-sink /usr/sbin/postfix /usr/bin/time; do
  [ -x "$t" ] || { echo "run.sh: $t is missing" >&2; exit 2; }
done

work="$(mktemp -d "${BENCH_DIR:-/tmp}/mukaika-bench-mta.XXXXXX")"
sink_pid="" mukaika_pid=""
cleanup() {
  "$repo/tests/support/postfix_instance.sh" stop "$work/postfix" || true
  [ -n "$mukaika_pid" ] && kill "$mukaika_pid" 2>/dev/null || true
  [ -n "$sink_pid" ] && kill "$sink_pid" 2>/dev/null || true
  wait 2>/dev/null || true
  if [ "${KEEP:-}" = 1 ]; then echo "kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_listen() {
  for _ in $(seq 600); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done
  echo "run.sh: nothing listens on port $1" >&2; return 1
}
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

# One smtp-sink for everything; -c writes its running counter (mesg=N).
sink_port=$(free_port)
/usr/sbin/smtp-sink -c -u postfix "127.0.0.1:$sink_port" 256 >"$work/sink.out" 2>"$work/sink.err" &
sink_pid=$!
wait_listen "$sink_port"

declare -A total source p50 p95 cpu ts ss
one_run() {  # name port run-number
  local t s
  read -r t s < <(python3 "$here/driver.py" throughput "127.0.0.1:$2" "$n" "$sessions" "$length" "$work/sink.out")
  ts[$1]+="$t " ss[$1]+="$s "
  echo "  $1 run $3: ${t} s to the sink (smtp-source done after ${s} s)" >&2
}
summarize() {  # name port
  total[$1]=$(printf '%s\n' ${ts[$1]} | median)
  source[$1]=$(printf '%s\n' ${ss[$1]} | median)
  read -r p50[$1] p95[$1] _ < <(python3 "$here/driver.py" latency "127.0.0.1:$2" "$lat" "$length" "$work/sink.out")
}

echo "(1) smtp-source -> smtp-sink" >&2
for ((i = 1; i <= runs; i++)); do one_run direct "$sink_port" "$i"; done
summarize direct "$sink_port"

# Both hops run side by side and take turns, run by run (Postfix first in
# odd runs, mukaika first in even ones). On ext4 an inode freed in the
# last minutes slows every later allocation in its block group, so
# whichever hop ran second used to pay for the files the first one had
# just deleted.
pf_port=$(free_port)
"$repo/tests/support/postfix_instance.sh" start "$work/postfix" "$pf_port" "127.0.0.1:$sink_port"
mk_port=$(free_port)
cat >"$work/mukaika.toml" <<CF
[antivirus]
database = "$repo/samples/clamav"
temp_dir = "${AV_TEMP_DIR:-}"
[smtp]
listen = "127.0.0.1:$mk_port"
[relay]
next_hop = "127.0.0.1:$sink_port"
maildir = "$work/maildir"
retry_min_s = 1
retry_max_s = 2
[spool]
dir = "$work/spool"
[quarantine]
dir = "$work/quarantine"
[audit]
log = "$work/audit.jsonl"
[http.internet]
listen = ""
[http.lgwan]
listen = ""
CF
"$bin" check-config "$work/mukaika.toml" >/dev/null
# /usr/bin/time: CPU of the daemon and everything it forked (service
# process, workers), reported after SIGTERM.
/usr/bin/time -f '%e %U %S' -o "$work/mukaika.time" "$bin" serve --config "$work/mukaika.toml" >"$work/mukaika.log" 2>&1 &
mukaika_pid=$!
wait_listen "$mk_port"

echo "(2) smtp-source -> Postfix -> smtp-sink and (3) smtp-source -> mukaika serve -> smtp-sink, in turns" >&2
for ((i = 1; i <= runs; i++)); do
  if ((i % 2)); then
    one_run postfix "$pf_port" "$i"
    one_run mukaika "$mk_port" "$i"
  else
    one_run mukaika "$mk_port" "$i"
    one_run postfix "$pf_port" "$i"
  fi
done
summarize postfix "$pf_port"
summarize mukaika "$mk_port"
"$repo/tests/support/postfix_instance.sh" stop "$work/postfix"
kill -TERM "$(pgrep -P "$mukaika_pid" -x mukaika)"
wait "$mukaika_pid" || true
mukaika_pid=""
read -r _ u s <"$work/mukaika.time"
total_msgs=$((runs * n + lat))
cpu_ms=$(awk -v u="$u" -v s="$s" -v m="$total_msgs" 'BEGIN {printf "%.2f", (u + s) * 1000 / m}')

printf '\n%s; %s cores; load average %s; AV_TEMP_DIR=%s; N=%s, %s sessions, %s bytes, median of %s runs; latency: %s mails one at a time\n\n' \
  "$("$bin" version 2>/dev/null | head -1)" "$(nproc)" "$(cut -d' ' -f1-3 /proc/loadavg)" "${AV_TEMP_DIR:-default}" "$n" "$sessions" "$length" "$runs" "$lat"
echo "| path | s until the sink has all | msgs/s | vs Postfix hop | smtp-source done s | latency p50 ms | p95 ms |"
echo "|---|---:|---:|---:|---:|---:|---:|"
for name in direct postfix mukaika; do
  case $name in
    direct) label="smtp-source → smtp-sink (wire ceiling)" ;;
    postfix) label="smtp-source → Postfix → smtp-sink" ;;
    mukaika) label="smtp-source → mukaika serve → smtp-sink" ;;
  esac
  awk -v l="$label" -v t="${total[$name]}" -v s="${source[$name]}" -v pt="${total[postfix]}" -v n="$n" \
      -v a="${p50[$name]}" -v b="${p95[$name]}" 'BEGIN {
    printf "| %s | %.2f | %.0f | %.2f | %.2f | %.1f | %.1f |\n", l, t, n / t, pt / t, s, a, b }'
done
echo
echo "mukaika serve CPU (daemon + service process + workers, user+sys): ${cpu_ms} ms per mail over $total_msgs mails"
