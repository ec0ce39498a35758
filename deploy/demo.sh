#!/usr/bin/env bash
# The main job, on a fresh Debian 12 machine as root: install what is
# needed, build, and run the gateway (`mukaika serve`) on the embedded
# default configuration - SMTP on 127.0.0.1:2525, sanitized mail delivered
# into a local Maildir standing in for the LGWAN mail server, and the file
# drop box on 127.0.0.1:8080 (Internet side) and 127.0.0.1:8081 (LGWAN
# side). Sends a few of the sample mails and uploads sample files through
# it, shows where they arrived, then keeps serving until Ctrl-C
# (DEMO_ONCE=1: stop after the samples).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

bash deploy/install-deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBUILD_TESTING=OFF > /dev/null
ninja -C build mukaika

demo=var/demo
rm -rf "$demo"
mkdir -p "$demo"
cd "$demo"
# The embedded default: ./var/spool, ./var/quarantine, ./var/lgwan-maildir,
# ./var/audit.jsonl below this directory.
"$root/build/gateway/mukaika" serve > serve.log 2>&1 &
daemon=$!
trap 'kill -TERM $daemon 2>/dev/null; wait $daemon 2>/dev/null || true' EXIT INT TERM

for _ in $(seq 1 100); do
  if ! kill -0 $daemon 2>/dev/null; then
    cat serve.log
    echo "mukaika serve が起動できませんでした / mukaika serve did not start" >&2
    exit 2
  fi
  (exec 3<>/dev/tcp/127.0.0.1/2525) 2>/dev/null && break
  sleep 0.2
done
cat serve.log
echo

samples=(iso2022jp-ms-ext.eml many-attachments.eml eicar-attachment.eml html-only.eml)
for s in "${samples[@]}"; do
  echo "送信 / sending samples/mail/$s"
  swaks --silent 2 --server 127.0.0.1:2525 --from sender@example.com --to staff@city.example.lg.jp \
    --data "@$root/samples/mail/$s" > /dev/null
done

for _ in $(seq 1 150); do
  n=$(find var/lgwan-maildir/new -type f 2>/dev/null | wc -l)
  [ "$n" -ge "${#samples[@]}" ] && break
  sleep 0.2
done

# The drop box: two files over the REST API (the demo token), then their results.
ids=()
for f in active-content.pdf polyglot-zip.png; do
  echo "アップロード / uploading samples/files/$f"
  reply=$(curl -sS -H "Authorization: Bearer demo-token" --data-binary "@$root/samples/files/$f" \
    "http://127.0.0.1:8080/api/v1/files?name=$f&recipient=demo-staff")
  ids+=("$(printf '%s' "$reply" | sed -n 's/.*"id":"\([0-9a-f]*\)".*/\1/p')")
done
for id in "${ids[@]}"; do
  for _ in $(seq 1 150); do
    status=$(curl -sS -H "Authorization: Bearer demo-token" "http://127.0.0.1:8081/api/v1/files/$id" |
      sed -n 's/.*"status":"\([a-z]*\)".*/\1/p')
    case $status in queued|processing|"") sleep 0.2 ;; *) break ;; esac
  done
  echo "  $id: $status  (curl -H 'Authorization: Bearer demo-token' -OJ http://127.0.0.1:8081/api/v1/files/$id/content)"
done

echo
echo "届いたメール (LGWAN 側の代わりの Maildir) / delivered mail (the Maildir standing in for the LGWAN side):"
ls -1 "$PWD/var/lgwan-maildir/new/"
echo "原本保管 / originals kept:  $PWD/var/quarantine/"
echo "監査ログ / audit log:       $PWD/var/audit.jsonl"
echo "配送待ち / queue:           $root/build/gateway/mukaika queue   (in $PWD)"
echo
echo "ファイル受け渡し / the drop box:"
echo "  アップロード / upload:  http://127.0.0.1:8080/   (demo-uploader / demo-uploader)"
echo "  受信箱 / inbox:          http://127.0.0.1:8081/   (demo-staff / demo-staff)"
echo "  原本の承認 / approvals:  http://127.0.0.1:8081/approvals   (demo-approver / demo-approver)"
echo "  監査ログ / audit log:    http://127.0.0.1:8081/audit   (demo-auditor / demo-auditor)"
echo "  REST: curl -H 'Authorization: Bearer demo-token' --data-binary @FILE 'http://127.0.0.1:8080/api/v1/files?name=FILE'"
echo
echo "もっと送るには / to send more:"
echo "  swaks --server 127.0.0.1:2525 --from you@example.com --to staff@city.example.lg.jp --data @$root/samples/mail/utf8-plain.eml"
if [ "${DEMO_ONCE:-0}" = 1 ]; then
  exit 0
fi
echo "Ctrl-C で停止します / Ctrl-C stops mukaika."
wait $daemon
