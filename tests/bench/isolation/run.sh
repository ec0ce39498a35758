#!/usr/bin/env bash
# The cost of running the pipeline in sandboxed workers (issue 5). Not a
# test: it measures, it does not judge, and it is not part of ctest.
#
#   tests/bench/isolation/run.sh [BUILD_DIR]        (default: build-sbx)
#
# Builds nothing: run `ninja -C BUILD_DIR isolation_bench` first. Measures,
# with the real pipeline (libmagic, libclamav with the bundled test
# signatures, the default policy), for small mails (~2 KiB, text body and a
# CSV attachment) and one-page PDFs (generated with cairo: text, Japanese
# when a Japanese font is installed):
#   - throughput: all items at once on WORKERS workers (default: cores)
#       inprocess  Pipeline::run in one process, one thread
#       threads    Pipeline::run on WORKERS threads (no isolation at all)
#       pool       WORKERS sandboxed workers, 100 items each
#       fresh      WORKERS sandboxed workers, a new one per item
#   - latency: one item after another, one worker: the isolation overhead
#     of a single item is pool - inprocess and fresh - inprocess;
#   - the same latency with a 1 GiB "ballast" in the supervisor, standing in
#     for a production ClamAV database, which fork() must map into every
#     new worker.
# Each figure is the median of RUNS runs (default 3). libclamav's temp files
# go to BENCH_TMPDIR (default /dev/shm): on a disk they cost the same in and
# out of workers and would only add noise.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../../.." && pwd)
build=${1:-$repo/build-sbx}
case $build in /*) ;; *) build=$repo/$build ;; esac
bench=$build/gateway/isolation_bench
runs=${RUNS:-3}
workers=${WORKERS:-$(nproc)}
export TMPDIR=${BENCH_TMPDIR:-/dev/shm}

if [ ! -x "$bench" ]; then
  echo "run.sh: $bench not found; build it with: ninja -C $build isolation_bench" >&2
  exit 2
fi

# median VALUE of KEY over $runs runs of: isolation_bench ARGS (one mode)
median() {
  local key=$1
  shift
  for _ in $(seq "$runs"); do
    "$bench" "$@" | sed -n "s/.* $key=\([0-9.e+-]*\).*/\1/p"
  done | sort -g | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'
}

fmt() { awk -v v="$1" -v d="${2:-1}" 'BEGIN {printf "%.*f", d, v}'; }

echo "## $(date -u +%Y-%m-%d) on $(uname -r), $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo); TMPDIR=$TMPDIR; median of $runs runs"
echo
echo "Throughput (items/s, $workers workers or threads):"
echo
echo "| items | inprocess (1 thread) | threads | pool (100/worker) | fresh (1/worker) |"
echo "|---|---|---|---|---|"
for kind in mail pdf; do
  n=500
  [ "$kind" = pdf ] && n=100
  row="| $n ${kind}s"
  for mode in inprocess threads pool fresh; do
    row="$row | $(fmt "$(median items_per_s --kind $kind --items $n --workers "$workers" --mode $mode)")"
  done
  echo "$row |"
done
echo
echo "Latency (ms per item, p50, one item at a time):"
echo
echo "| items | inprocess | pool | fresh | pool overhead | fresh overhead |"
echo "|---|---|---|---|---|---|"
for spec in "mail 0 200" "pdf 0 50" "mail 1024 100" "pdf 1024 30"; do
  read -r kind ballast n <<<"$spec"
  declare -A lat=()
  for mode in inprocess pool fresh; do
    lat[$mode]=$(median latency_ms_p50 --kind $kind --items "$n" --latency --ballast-mb "$ballast" --mode $mode)
  done
  label="$kind"
  [ "$ballast" != 0 ] && label="$kind, ${ballast} MiB ballast"
  echo "| $label | $(fmt "${lat[inprocess]}" 2) | $(fmt "${lat[pool]}" 2) | $(fmt "${lat[fresh]}" 2) | $(fmt "$(awk -v a="${lat[pool]}" -v b="${lat[inprocess]}" 'BEGIN {print a-b}')" 2) | $(fmt "$(awk -v a="${lat[fresh]}" -v b="${lat[inprocess]}" 'BEGIN {print a-b}')" 2) |"
done
