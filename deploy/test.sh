#!/usr/bin/env bash
# The whole test suite, on a fresh Debian 12 machine as root: install what
# is needed, build, and run every test.
#   1. ASan/UBSan build: unit and end-to-end tests
#   2. clang libFuzzer build: a short fuzzing run of the mail path
#   3. release build, the binary users run: the end-to-end and browser tests
#      and the tests whose limits ASan hides (memory caps, peak memory;
#      labels isolation and bounded). The other unit tests ran under ASan.
#      (the summary printed last)
# Tests that need ../shared/corpus skip when it is not there. The browser
# tests (tests/browser) use Debian's chromium and playwright-core from npm
# (pinned in tests/browser/package-lock.json; no browser is downloaded).
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc)

bash deploy/install-deps.sh

echo "== browser test dependencies (npm) =="
PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --prefix tests/browser --no-audit --no-fund

echo "== ASan/UBSan build =="
cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DMUKAIKA_SANITIZE=ON > /dev/null
ninja -C build-asan
# libclamav keeps some allocations until exit; leaks in our code are caught
# by the fuzz build's LeakSanitizer run instead.
ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --test-dir build-asan --output-on-failure -j "$jobs"

echo "== libFuzzer build (clang) =="
CC=clang CXX=clang++ cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMUKAIKA_FUZZ=ON \
  -DBUILD_TESTING=ON > /dev/null
ninja -C build-fuzz fuzz_mail
ctest --test-dir build-fuzz --output-on-failure -R '^fuzz_'

echo "== release build =="
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo > /dev/null
ninja -C build mukaika worker_test archive_flatten_test
ctest --test-dir build --output-on-failure -j "$jobs" -L 'e2e|isolation|bounded'
