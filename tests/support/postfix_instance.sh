#!/usr/bin/env bash
# A throwaway Postfix instance, for tests/e2e/test_postfix.py and
# tests/bench/mta/run.sh: its own config_directory, queue_directory and
# data_directory under DIR, an smtpd on 127.0.0.1:PORT, and everything for
# city.example.lg.jp relayed to NEXT_HOP (host:port). The system instance
# (/etc/postfix, /var/spool/postfix) is never touched: every command runs
# with `postfix -c DIR/etc`. Needs root.
#
#   postfix_instance.sh start DIR PORT NEXT_HOP    # check, start, wait until it listens
#   postfix_instance.sh stop DIR                   # stop (abort if that fails), wait for master
set -euo pipefail

cmd="${1:-}"
dir="${2:-}"
[ -n "$cmd" ] && [ -n "$dir" ] || { echo "usage: $0 start DIR PORT NEXT_HOP | stop DIR" >&2; exit 2; }

case "$cmd" in
start)
  port="$3" next_hop="$4"
  mkdir -p "$dir/etc" "$dir/queue" "$dir/data"
  chown postfix:postfix "$dir/data"
  # The daemons (user postfix) chdir into the queue: DIR and its parents
  # must be searchable (mktemp -d makes 0700).
  d="$dir"
  while [ "$d" != / ]; do chmod o+x,g+x "$d"; d="$(dirname "$d")"; done
  cat >"$dir/etc/main.cf" <<CF
compatibility_level = 3.6
queue_directory = $dir/queue
data_directory = $dir/data
mail_owner = postfix
myhostname = internet-mta.example
mydomain = example
myorigin = \$myhostname
mydestination =
local_recipient_maps =
local_transport = error:5.1.1 local delivery is disabled
alias_maps =
alias_database =
relay_domains = city.example.lg.jp
transport_maps = texthash:$dir/etc/transport
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
smtp_tls_security_level = none
smtpd_tls_security_level = none
maillog_file = $dir/maillog
maillog_file_prefixes = $dir
queue_run_delay = 1s
minimal_backoff_time = 1s
maximal_backoff_time = 2s
biff = no
CF
  cat >"$dir/etc/master.cf" <<CF
127.0.0.1:$port inet n - n - - smtpd
pickup    unix  n - n 60    1 pickup
cleanup   unix  n - n -     0 cleanup
qmgr      unix  n - n 300   1 qmgr
rewrite   unix  - - n -     - trivial-rewrite
bounce    unix  - - n -     0 bounce
defer     unix  - - n -     0 bounce
trace     unix  - - n -     0 bounce
verify    unix  - - n -     1 verify
flush     unix  n - n 1000? 0 flush
proxymap  unix  - - n -     - proxymap
smtp      unix  - - n -     - smtp
relay     unix  - - n -     - smtp
showq     unix  n - n -     - showq
error     unix  - - n -     - error
retry     unix  - - n -     - error
discard   unix  - - n -     - discard
anvil     unix  - - n -     1 anvil
scache    unix  - - n -     1 scache
postlog   unix-dgram n - n - 1 postlogd
CF
  echo "city.example.lg.jp smtp:[${next_hop%:*}]:${next_hop##*:}" >"$dir/etc/transport"
  postfix -c "$dir/etc" check
  postfix -c "$dir/etc" start 2>/dev/null
  for _ in $(seq 300); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && exit 0
    sleep 0.1
  done
  echo "postfix_instance.sh: Postfix does not listen on 127.0.0.1:$port" >&2
  tail -20 "$dir/maillog" >&2 || true
  exit 1
  ;;
stop)
  [ -f "$dir/etc/main.cf" ] || exit 0
  pid="$(tr -dc 0-9 <"$dir/queue/pid/master.pid" 2>/dev/null || true)"
  postfix -c "$dir/etc" stop 2>/dev/null || postfix -c "$dir/etc" abort 2>/dev/null || true
  # `postfix stop` returns before master has exited; a zombie counts as gone.
  for _ in $(seq 300); do
    [ -n "$pid" ] && [ -e "/proc/$pid" ] && [ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" != Z ] || exit 0
    sleep 0.1
  done
  postfix -c "$dir/etc" abort 2>/dev/null || true
  ;;
*)
  echo "usage: $0 start DIR PORT NEXT_HOP | stop DIR" >&2; exit 2 ;;
esac
