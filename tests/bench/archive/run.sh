#!/usr/bin/env bash
# Benchmark of archive.flatten through the whole pipeline (mukaika sanitize):
# detection, ClamAV on every member and on the output, text.normalize on
# each member, and the rebuilt zip. Not part of ctest.
#
#   tests/bench/archive/run.sh [path/to/mukaika]     (default: build/gateway/mukaika)
#
# Inputs are generated at run time under a fresh directory in /tmp (removed
# afterwards; nothing is committed):
#   small-1000.zip   1000 small CSV/text members (0.5-4 KiB), deflated, in 10 folders
#   small-1000.7z    the same members as 7z (LZMA), for comparison
#   large-200m.zip   40 CSV members of 5 MiB each, stored: a 200 MiB archive
# Each input runs RUNS times (default 3); the table shows the median wall
# time, throughput (input bytes and members per second) and the largest peak
# resident memory (/usr/bin/time -v: the largest single process, i.e. the
# sandboxed worker that ran the pipeline). A run on one tiny text file gives
# the fixed start-up cost (configuration, libmagic, loading ClamAV signatures).
# RUNS=5 and LEVEL=1 (deflate level of the output zip) may be set.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../../.." && pwd)"
bin="${1:-$repo/build/gateway/mukaika}"
runs="${RUNS:-3}"
[ -x "$bin" ] || { echo "run.sh: no mukaika binary at $bin (build it, or pass its path)" >&2; exit 2; }
[ -x /usr/bin/time ] || { echo "run.sh: /usr/bin/time is missing (apt-get install time)" >&2; exit 2; }

work="$(mktemp -d /tmp/mukaika-bench-archive.XXXXXX)"
trap 'rm -rf "$work"' EXIT

python3 - "$work" <<'EOF'
import os, random, sys, zipfile
work = sys.argv[1]
rnd = random.Random(4)
def csv(n_bytes):
    rows = ["日付,部署,件名,金額"]
    size = len(rows[0])
    while size < n_bytes:
        row = "2024-%02d-%02d,%s,%s,%d" % (rnd.randint(1, 12), rnd.randint(1, 28),
              rnd.choice(["総務課", "財政課", "情報政策課", "市民課"]),
              rnd.choice(["備品購入", "委託料", "旅費", "通信費"]), rnd.randint(1000, 9999999))
        rows.append(row)
        size += len(row.encode()) + 1
    return ("\n".join(rows) + "\n").encode()
small = [("folder%02d/file%04d.%s" % (i % 10, i, "csv" if i % 2 else "txt"), csv(rnd.randint(512, 4096)))
         for i in range(1000)]
with zipfile.ZipFile(os.path.join(work, "small-1000.zip"), "w", zipfile.ZIP_DEFLATED) as z:
    for name, data in small:
        z.writestr(name, data)
os.makedirs(os.path.join(work, "tree"))
for name, data in small:
    p = os.path.join(work, "tree", name)
    os.makedirs(os.path.dirname(p), exist_ok=True)
    open(p, "wb").write(data)
block = csv(5 << 20)
with zipfile.ZipFile(os.path.join(work, "large-200m.zip"), "w", zipfile.ZIP_STORED) as z:
    for i in range(40):
        # Each member differs (the first line), so nothing is deduplicated anywhere.
        z.writestr("export/part%02d.csv" % i, ("# part %d\n" % i).encode() + block)
open(os.path.join(work, "tiny.txt"), "wb").write("起動の費用を測るための小さなファイル\n".encode())
EOF
# 7z via libarchive's own bsdtar when present; skipped otherwise.
if command -v bsdtar >/dev/null; then
  (cd "$work/tree" && bsdtar --format 7zip -cf "$work/small-1000.7z" .)
fi

# The 200 MiB input and its members exceed the default limits (50 MiB per
# item): raise them for the benchmark, keeping ClamAV's limits above ours.
cat >"$work/bench.toml" <<'EOF'
[limits]
max_item_bytes = 268435456
max_total_bytes = 536870912
max_parts = 2000
max_seconds = 600
[antivirus]
max_file_bytes = 268435456
max_scan_bytes = 1073741824
EOF
if [ -n "${LEVEL:-}" ]; then  # LEVEL=1 tests/bench/archive/run.sh: the output zip's deflate level
  printf '[sanitizer."archive.flatten"]\ncompression_level = %s\n' "$LEVEL" >>"$work/bench.toml"
fi
"$bin" check-config "$work/bench.toml" >/dev/null

members_of() {
  case "$1" in
    small-1000.*) echo 1000 ;;
    large-200m.zip) echo 40 ;;
    *) echo 1 ;;
  esac
}

measure() {  # input -> "seconds maxrss_kib"
  local input="$1" out="$work/out" best=() rss=0 i
  for ((i = 0; i < runs; i++)); do
    rm -rf "$out" && mkdir "$out"
    /usr/bin/time -v -o "$work/time.txt" "$bin" sanitize --config "$work/bench.toml" --out "$out" \
      --report "$out/report.json" "$work/$input" >/dev/null 2>"$work/stderr.txt" || {
      rc=$?
      [ $rc -eq 1 ] || { cat "$work/stderr.txt" >&2; exit $rc; }
    }
    local t r
    t=$(awk -F': ' '/Elapsed \(wall clock\)/ {n=split($2,p,":"); s=0; for(k=1;k<=n;k++) s=s*60+p[k]; print s}' "$work/time.txt")
    r=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$work/time.txt")
    best+=("$t")
    [ "$r" -gt "$rss" ] && rss=$r
  done
  printf '%s\n' "${best[@]}" | sort -n | awk -v rss="$rss" '{a[NR]=$1} END {printf "%s %s\n", a[int((NR+1)/2)], rss}'
  # What happened to the input, for the record.
  python3 - "$out/report.json" <<'EOF' >&2
import json, sys
r = json.load(open(sys.argv[1]))
items = r["items"] if isinstance(r, dict) else r
for it in items:
    acts = {}
    for a in it["actions"]:
        acts[a["action"]] = acts.get(a["action"], 0) + 1
    print("   %s: verdict %s, actions %s" % (it.get("input", "?").split("/")[-1], it["verdict"], acts))
EOF
}

printf '%s, %s runs each, %s cores, load average %s\n' "$("$bin" version 2>/dev/null | head -1)" "$runs" "$(nproc)" \
  "$(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-16s %10s %8s %9s %10s %12s\n' input "bytes" "members" "median s" "MiB/s" "members/s"
base=""
for input in tiny.txt small-1000.zip small-1000.7z large-200m.zip; do
  [ -f "$work/$input" ] || continue
  bytes=$(stat -c %s "$work/$input")
  # Not `read < <(measure)`: that would race the next input's run.
  result=$(measure "$input")
  read -r secs rss <<<"$result"
  [ -z "$base" ] && base=$secs
  m=$(members_of "$input")
  awk -v i="$input" -v b="$bytes" -v m="$m" -v s="$secs" -v base="$base" -v rss="$rss" 'BEGIN {
    net = s - base; if (net < 0.001) net = 0.001
    printf "%-16s %10d %8d %9.2f %10.1f %12.0f   peak RSS %d MiB (net of start-up %.2f s)\n",
      i, b, m, s, b / 1048576 / net, m / net, rss / 1024, base }'
done
