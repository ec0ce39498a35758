#!/usr/bin/env bash
# PDF rasterizing benchmark (issue 3). Not a test: it measures, it does not
# judge, and it is not part of ctest.
#
#   tests/bench/pdf/run.sh [BUILD_DIR] [PAGES]      (defaults: build-pdf, 60)
#
# In one run on one machine it measures, on a generated PDF of PAGES A4
# pages (two dense text pages, Latin and Japanese with a table, for every
# photographic page):
#   - pages per second of `pdftoppm -r 150` writing raw PPM to /dev/null (the
#     bare Poppler render with no image encoding: the floor of rasterizing)
#     and of mukaika's rasterizer (pdf_bench, output streamed to a file, as
#     the gateway's worker does) at 150 dpi; median of RUNS runs each;
#   - output bytes per page against a lossless RGB Flate rebuild of the same
#     pages (what Dangerzone writes);
#   - peak memory (max RSS) for PAGES and for 3 x PAGES pages;
#   - for reference, the whole `mukaika sanitize` command on the same file
#     (type detection, the test virus scanner, the report).
# Needs: poppler-utils (pdftoppm), time (/usr/bin/time), a Japanese font
# (fonts-ipafont-gothic) for the Japanese lines.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../../.." && pwd)
build=${1:-$repo/build-pdf}
pages=${2:-60}
runs=${RUNS:-3}
case $build in /*) ;; *) build=$repo/$build ;; esac

for tool in pdftoppm /usr/bin/time; do
  command -v "$tool" > /dev/null || { echo "run.sh: $tool is missing (deploy/install-deps.sh)" >&2; exit 2; }
done
ninja -C "$build" pdf_bench mukaika > /dev/null
bench=$build/sanitizers/pdf_rasterize/pdf_bench
mukaika=$build/gateway/mukaika

# tmpfs when there is one, so the disk does not time anything.
base=/tmp
[ -d /dev/shm ] && [ -w /dev/shm ] && base=/dev/shm
work=$(mktemp -d "$base/mukaika-pdf-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
"$bench" make "$work/bench.pdf" "$pages"
"$bench" make "$work/bench3.pdf" $((pages * 3))

# measure NAME CMD... : runs CMD under /usr/bin/time, appends
# "wall_seconds maxrss_kb cpu_seconds" to $work/NAME
measure() {
  local name=$1
  shift
  /usr/bin/time -f '%e %M %U %S' -o "$work/time.out" "$@" > "$work/$name.stdout"
  awk '{ printf "%s %s %.2f\n", $1, $2, $3 + $4 }' "$work/time.out" >> "$work/$name"
}
median_seconds() { sort -n "$work/$1" | awk '{ s[NR] = $1 } END { print s[int((NR + 1) / 2)] }'; }
median_cpu() { sort -n -k3 "$work/$1" | awk '{ s[NR] = $3 } END { print s[int((NR + 1) / 2)] }'; }
max_rss_mb() { awk '{ if ($2 > m) m = $2 } END { printf "%.0f", m / 1024 }' "$work/$1"; }
value() { tr ' ' '\n' < "$work/$1.stdout" | awk -F= -v k="$2" '$1 == k { print $2; exit }'; }

# One untimed run of each fills the page cache and the font caches.
pdftoppm -r 150 "$work/bench.pdf" > /dev/null
"$bench" rasterize "$work/bench.pdf" "$work/out.pdf" > /dev/null

for _ in $(seq "$runs"); do
  measure pdftoppm sh -c "pdftoppm -r 150 '$work/bench.pdf' > /dev/null"
  measure mukaika "$bench" rasterize "$work/bench.pdf" "$work/out.pdf"
  measure mukaika1 "$bench" rasterize "$work/bench.pdf" "$work/out1.pdf" --threads 1
done
measure baseline "$bench" rasterize "$work/bench.pdf" "$work/baseline.pdf" --baseline
measure mukaika3 "$bench" rasterize "$work/bench3.pdf" "$work/out3.pdf"
"$bench" rasterize "$work/bench.pdf" "$work/perpage.pdf" --per-page > "$work/perpage.txt"

mkdir -p "$work/cli-out"
measure cli "$mukaika" sanitize --out "$work/cli-out" --report "$work/report.json" "$work/bench.pdf"

t_ppm=$(median_seconds pdftoppm)
t_mk=$(median_seconds mukaika)
t_mk1=$(median_seconds mukaika1)
t_cli=$(median_seconds cli)
out=$(value mukaika output_bytes)
basebytes=$(value baseline output_bytes)
inbytes=$(value mukaika input_bytes)

pps() { awk -v p="$1" -v t="$2" 'BEGIN { printf "%.1f", p / t }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }

echo "## PDF rasterizing benchmark"
echo
echo "- machine: $(nproc) cores, $(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo), $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo), load average before: $load_before"
echo "- document: $pages A4 pages ($((pages - pages / 3)) text, $((pages / 3)) photographic), $inbytes bytes; 150 dpi; median of $runs runs"
echo "- command: tests/bench/pdf/run.sh $(basename "$build") $pages"
echo
echo "| run | wall s | pages/s | vs pdftoppm | CPU s | output bytes/page | peak RSS MiB |"
echo "|---|---:|---:|---:|---:|---:|---:|"
echo "| pdftoppm -r 150 (raw PPM to /dev/null) | $t_ppm | $(pps "$pages" "$t_ppm") | 1.00 | $(median_cpu pdftoppm) | - | $(max_rss_mb pdftoppm) |"
echo "| mukaika pdf.rasterize, $(nproc) threads | $t_mk | $(pps "$pages" "$t_mk") | $(ratio "$t_ppm" "$t_mk") | $(median_cpu mukaika) | $((out / pages)) | $(max_rss_mb mukaika) |"
echo "| mukaika pdf.rasterize, 1 thread | $t_mk1 | $(pps "$pages" "$t_mk1") | $(ratio "$t_ppm" "$t_mk1") | $(median_cpu mukaika1) | $(($(value mukaika1 output_bytes) / pages)) | $(max_rss_mb mukaika1) |"
echo "| lossless RGB rebuild (Dangerzone's output) | $(median_seconds baseline) | - | - | $(median_cpu baseline) | $((basebytes / pages)) | $(max_rss_mb baseline) |"
echo "| mukaika, $((pages * 3)) pages | $(median_seconds mukaika3) | $(pps $((pages * 3)) "$(median_seconds mukaika3)") | - | $(median_cpu mukaika3) | $(($(value mukaika3 output_bytes) / (pages * 3))) | $(max_rss_mb mukaika3) |"
echo "| mukaika sanitize (whole CLI) | $t_cli | $(pps "$pages" "$t_cli") | $(ratio "$t_ppm" "$t_cli") | $(median_cpu cli) | - | $(max_rss_mb cli) |"
echo
echo "- output / lossless RGB: $(ratio "$out" "$basebytes") ($out / $basebytes bytes)"
echo "- page encodings: $(tr ' ' '\n' < "$work/mukaika.stdout" | grep -E '^(gray|rgb|indexed|bilevel)' | tr '\n' ' ')"
if ! grep -q '"pdf.rasterized"' "$work/report.json"; then
  echo "- note: \`mukaika sanitize\` did not rasterize the file (codes: $(grep -o '"code": *"[a-z_.]*"' "$work/report.json" | sort -u | tr '\n' ' ')); its row measures that"
fi
echo "- load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
if [ -n "${PER_PAGE:-}" ]; then
  echo
  sed 's/^/    /' "$work/perpage.txt"
fi
