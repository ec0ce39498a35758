#!/usr/bin/env bash
# Benchmark of the drop box uploads of `mukaika serve` (issue 7), in one run:
#   (1) one big upload (SIZE_MB=200 of random bytes, curl --data-binary to
#       POST /api/v1/files?name=big.bin with the demo token): seconds until
#       the 202 and MB/s, and the peak memory (VmHWM) of the process that
#       receives it, reset before the upload (/proc/PID/clear_refs) and read
#       after the 202 and again after the file was sanitized. A small upload
#       (SMALL_MB=20) is measured the same way first: the peak must not grow
#       with the upload's size, the server streams to disk.
#   (2) references for (1), in the same run and on the same file:
#       - loopback ceiling: the same curl command against a trivial HTTP sink
#         (sink.py, python3's standard library: reads the body in 1 MiB
#         recv_into calls and throws it away, then answers 202);
#       - disk ceiling: dd of the file into the drop box's filesystem with
#         conv=fsync (mukaika fsyncs an upload before its 202).
#   The big upload and the sink are each measured RUNS=3 times.
#   (3) CONCURRENT=50 small uploads (4 KiB text files) at once, each its own
#       curl: seconds until all have their 202, and until all are sanitized
#       (polling GET /api/v1/files/{id}).
# Not a test, not part of ctest: it measures, it does not judge.
#
#   tests/bench/dropbox/run.sh [path/to/mukaika]   (default: build/gateway/mukaika)
#
# Needs curl, python3, ss (iproute2), dd; root for clear_refs (otherwise the
# peak is the process's peak since start). KEEP=1 keeps the work directory;
# WORK=/path puts it elsewhere (default: under /tmp).
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../../.." && pwd)"
bin="${1:-$repo/build/gateway/mukaika}"
size_mb="${SIZE_MB:-200}" small_mb="${SMALL_MB:-20}" concurrent="${CONCURRENT:-50}" runs="${RUNS:-3}"
[ -x "$bin" ] || { echo "run.sh: no mukaika binary at $bin (build it, or pass its path)" >&2; exit 2; }
for t in curl python3 ss dd; do
  command -v "$t" >/dev/null || { echo "run.sh: $t is missing" >&2; exit 2; }
done

work="$(mktemp -d "${WORK:-/tmp}/mukaika-bench-dropbox.XXXXXX")"
mukaika_pid="" sink_pid=""
cleanup() {
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
kib() { awk -v k="$1" '/^VmHWM:/ && k == "hwm" {print $2} /^VmRSS:/ && k == "rss" {print $2}' "/proc/$listener/status"; }
reset_hwm() { echo 5 >"/proc/$listener/clear_refs" 2>/dev/null || echo "run.sh: cannot reset VmHWM (not root?)" >&2; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", b - a}'; }

echo "making test files" >&2
head -c "$((size_mb * 1024 * 1024))" /dev/urandom >"$work/big.bin"
head -c "$((small_mb * 1024 * 1024))" /dev/urandom >"$work/small.bin"
mkdir -p "$work/small"
for i in $(seq "$concurrent"); do
  python3 -c 'import sys; sys.stdout.write(("メモ %s: 無害化のベンチマーク。\n" % sys.argv[1]) * 100)' "$i" | head -c 4096 >"$work/small/$i.txt"
done

# ------------------------------------------------------------ mukaika serve
smtp_port=$(free_port) inet_port=$(free_port) lgwan_port=$(free_port)
cat >"$work/mukaika.toml" <<CF
[antivirus]
database = "$repo/samples/clamav"
[smtp]
listen = "127.0.0.1:$smtp_port"
[relay]
maildir = "$work/maildir"
[spool]
dir = "$work/spool"
[quarantine]
dir = "$work/quarantine"
[audit]
log = "$work/audit.jsonl"
[http]
max_upload_bytes = $(((size_mb + 16) * 1024 * 1024))
request_timeout_seconds = 60
[http.internet]
listen = "127.0.0.1:$inet_port"
[http.lgwan]
listen = "127.0.0.1:$lgwan_port"
[dropbox]
dir = "$work/dropbox"
CF
"$bin" serve --config "$work/mukaika.toml" >"$work/mukaika.log" 2>&1 &
mukaika_pid=$!
wait_listen "$inet_port"
wait_listen "$lgwan_port"
# The process that accepts on the Internet listener (the one that receives
# the upload), whichever of mukaika's processes that is.
listener=$(ss -ltnpH "sport = :$inet_port" | sed -n 's/.*pid=\([0-9]*\).*/\1/p' | head -1)
[ -n "$listener" ] || { echo "run.sh: cannot find the process listening on $inet_port" >&2; exit 1; }
echo "mukaika serve pid $mukaika_pid, listener pid $listener ($(tr '\0' ' ' <"/proc/$listener/cmdline"))" >&2

api="http://127.0.0.1:$inet_port/api/v1/files"
auth="Authorization: Bearer demo-token"

# Waits until item $1 is no longer queued or processing; prints its status.
wait_final() {
  python3 - "$api" "$1" <<'PY'
import json, sys, time, urllib.request
api, item_id = sys.argv[1], sys.argv[2]
deadline = time.time() + 1800
while time.time() < deadline:
    req = urllib.request.Request(api + "/" + item_id, headers={"Authorization": "Bearer demo-token"})
    item = json.load(urllib.request.urlopen(req))
    if item["status"] not in ("queued", "processing"):
        reason = (item.get("reason") or {}).get("en", "")
        print(item["status"] + (" (%s)" % reason if reason else ""))
        sys.exit(0)
    time.sleep(0.2)
sys.exit("timed out waiting for " + item_id)
PY
}

declare -A secs mbps rss_before hwm_202 hwm_done final
upload_big() {  # label file
  local label="$1" file="$2" t0 t1 out id
  local mb; mb=$(awk -v b="$(stat -c %s "$file")" 'BEGIN {printf "%.1f", b / 1048576}')
  reset_hwm
  rss_before[$label]=$(kib rss)
  t0=$(now)
  out=$(curl -sS -H 'Expect:' -H "$auth" -H 'Content-Type: application/octet-stream' \
    --data-binary "@$file" -w '\n%{http_code}' "$api?name=$label.bin")
  t1=$(now)
  [ "$(tail -1 <<<"$out")" = 202 ] || { echo "run.sh: upload of $label answered: $out" >&2; exit 1; }
  hwm_202[$label]=$(kib hwm)
  secs[$label]=$(elapsed "$t0" "$t1")
  mbps[$label]=$(awk -v m="$mb" -v s="${secs[$label]}" 'BEGIN {printf "%.0f", m / s}')
  id=$(head -1 <<<"$out" | python3 -c 'import json, sys; print(json.load(sys.stdin)["id"])')
  final[$label]=$(wait_final "$id")
  hwm_done[$label]=$(kib hwm)
  echo "  $label: ${mb} MB in ${secs[$label]} s (${mbps[$label]} MB/s); VmRSS ${rss_before[$label]} kB before (VmHWM reset to it)," \
       "${hwm_202[$label]} kB at the 202, ${hwm_done[$label]} kB when ${final[$label]}" >&2
}

echo "(1) uploads to mukaika serve" >&2
upload_big small "$work/small.bin"
for r in $(seq "$runs"); do upload_big "big$r" "$work/big.bin"; done

# ------------------------------------------------------------ references
echo "(2) loopback ceiling: curl -> sink.py; disk ceiling: dd conv=fsync" >&2
sink_port=$(free_port)
python3 "$here/sink.py" "$sink_port" &
sink_pid=$!
wait_listen "$sink_port"
declare -a sink_s sink_mbps
for r in $(seq "$runs"); do
  t0=$(now)
  code=$(curl -sS -o /dev/null -H 'Expect:' -H "$auth" -H 'Content-Type: application/octet-stream' \
    --data-binary "@$work/big.bin" -w '%{http_code}' "http://127.0.0.1:$sink_port/api/v1/files?name=big.bin")
  t1=$(now)
  [ "$code" = 202 ] || { echo "run.sh: sink answered $code" >&2; exit 1; }
  sink_s[r]=$(elapsed "$t0" "$t1")
  sink_mbps[r]=$(awk -v m="$size_mb" -v s="${sink_s[r]}" 'BEGIN {printf "%.0f", m / s}')
done
kill "$sink_pid"; wait "$sink_pid" 2>/dev/null || true; sink_pid=""
t0=$(now)
dd if="$work/big.bin" of="$work/dropbox/dd.bin" bs=1M conv=fsync status=none
t1=$(now)
rm -f "$work/dropbox/dd.bin"
dd_s=$(elapsed "$t0" "$t1")
dd_mbps=$(awk -v m="$size_mb" -v s="$dd_s" 'BEGIN {printf "%.0f", m / s}')
echo "  sink: ${sink_s[*]} s (${sink_mbps[*]} MB/s); dd: ${dd_s} s (${dd_mbps} MB/s)" >&2

# ------------------------------------------------------------ concurrency
echo "(3) $concurrent small uploads at once" >&2
mkdir -p "$work/answers"
t0=$(now)
seq "$concurrent" | xargs -P "$concurrent" -I{} curl -sS -H 'Expect:' -H "$auth" -H 'Content-Type: text/plain' \
  --data-binary "@$work/small/{}.txt" -o "$work/answers/{}.json" -w '%{http_code}\n' "$api?name=memo-{}.txt" \
  >"$work/codes.txt"
t_202=$(now)
n202=$(grep -c '^202$' "$work/codes.txt" || true)
[ "$n202" = "$concurrent" ] || { echo "run.sh: only $n202 of $concurrent answered 202: $(sort "$work/codes.txt" | uniq -c | tr '\n' ' ')" >&2; exit 1; }
python3 - "$api" "$work/answers" "$concurrent" >"$work/concurrent.txt" <<'PY'
import json, os, sys, time, urllib.request
api, answers, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
ids = [json.load(open(os.path.join(answers, f)))["id"] for f in os.listdir(answers)]
assert len(ids) == n, ids
pending, results = set(ids), {}
deadline = time.time() + 1800
while pending and time.time() < deadline:
    for i in list(pending):
        req = urllib.request.Request(api + "/" + i, headers={"Authorization": "Bearer demo-token"})
        item = json.load(urllib.request.urlopen(req))
        s = item["status"]
        if s not in ("queued", "processing"):
            pending.discard(i)
            if item.get("reason"):
                s += " (%s)" % item["reason"]["en"]
            results[s] = results.get(s, 0) + 1
    if pending:
        time.sleep(0.1)
print(" ".join("%s=%d" % kv for kv in sorted(results.items())) + (" pending=%d" % len(pending) if pending else ""))
PY
t_done=$(now)
conc_202=$(elapsed "$t0" "$t_202") conc_done=$(elapsed "$t0" "$t_done")
echo "  all 202 after ${conc_202} s, all sanitized after ${conc_done} s ($(cat "$work/concurrent.txt"))" >&2

# ------------------------------------------------------------ summary
kill -TERM "$mukaika_pid"; wait "$mukaika_pid" || true; mukaika_pid=""

printf '\n%s; %s cores; load average %s (at the end); work dir on %s (%s)\n\n' \
  "$("$bin" version 2>/dev/null | head -1)" "$(nproc)" "$(cut -d' ' -f1-3 /proc/loadavg)" \
  "$(df --output=source "$work" | tail -1)" "$(df --output=fstype "$work" | tail -1)"
echo "| upload | MB | s until 202 | MB/s | VmRSS before kB | VmHWM at 202 kB | VmHWM when processed kB | result |"
echo "|---|---:|---:|---:|---:|---:|---:|---|"
for l in small $(for r in $(seq "$runs"); do echo "big$r"; done); do
  mb=$([ "$l" = small ] && echo "$small_mb" || echo "$size_mb")
  echo "| mukaika serve, curl --data-binary | $mb | ${secs[$l]} | ${mbps[$l]} | ${rss_before[$l]} | ${hwm_202[$l]} | ${hwm_done[$l]} | ${final[$l]} |"
done
for r in $(seq "$runs"); do
  echo "| loopback ceiling: curl → sink.py (python3) | $size_mb | ${sink_s[r]} | ${sink_mbps[r]} | | | | |"
done
echo "| disk ceiling: dd bs=1M conv=fsync | $size_mb | $dd_s | $dd_mbps | | | | |"
echo
echo "$concurrent concurrent uploads of 4 KiB: all 202 after ${conc_202} s, all sanitized after ${conc_done} s ($(cat "$work/concurrent.txt"))"
