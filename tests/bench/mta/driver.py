#!/usr/bin/env python3
"""Load and timing for tests/bench/mta/run.sh (not a test).

  driver.py throughput HOST:PORT N SESSIONS LENGTH SINK_OUT
      runs smtp-source -s SESSIONS -m N -l LENGTH against HOST:PORT and waits
      until smtp-sink (-c, its running counter written to SINK_OUT) has
      received N more messages. Prints "total_s source_s": submission start
      to the last arrival at the sink, and to smtp-source's exit.
  driver.py latency HOST:PORT K LENGTH SINK_OUT
      K mails one after another (smtplib, one connection each); for each,
      the time from connect to its arrival at the sink. Prints "p50_ms p95_ms max_ms".
"""
import re
import smtplib
import subprocess
import sys
import time

SOURCE = "/usr/sbin/smtp-source"
FROM, TO = "load@example.com", "staff@city.example.lg.jp"


def sink_count(path):
    with open(path, "rb") as f:
        try:
            f.seek(-200, 2)
        except OSError:
            pass
        m = re.findall(rb"mesg=(\d+)", f.read())
    return int(m[-1]) if m else 0


def wait_count(path, target, timeout=300, step=0.002):
    deadline = time.monotonic() + timeout
    while sink_count(path) < target:
        if time.monotonic() > deadline:
            sys.exit("driver: the sink got %d of %d messages in %ds" % (sink_count(path), target, timeout))
        time.sleep(step)
    return time.monotonic()


def throughput(target, n, sessions, length, sink_out):
    base = sink_count(sink_out)
    t0 = time.monotonic()
    subprocess.run([SOURCE, "-s", str(sessions), "-m", str(n), "-l", str(length), "-f", FROM, "-t", TO, target],
                   check=True)
    t_src = time.monotonic()
    t_end = wait_count(sink_out, base + n, step=0.01)
    print("%.3f %.3f" % (t_end - t0, t_src - t0))


def latency(target, k, length, sink_out):
    host, port = target.rsplit(":", 1)
    body = ("Subject: latency\r\nFrom: <%s>\r\nTo: <%s>\r\n\r\n" % (FROM, TO)
            + ("x" * 78 + "\r\n") * max(1, length // 80))
    out = []
    for _ in range(k):
        base = sink_count(sink_out)
        t0 = time.monotonic()
        with smtplib.SMTP(host, int(port), timeout=60) as s:
            s.sendmail(FROM, [TO], body)
        out.append(wait_count(sink_out, base + 1, timeout=120, step=0.0005) - t0)
    out.sort()
    print("%.1f %.1f %.1f" % (out[len(out) // 2] * 1e3, out[min(len(out) - 1, int(len(out) * 0.95))] * 1e3,
                              out[-1] * 1e3))


if __name__ == "__main__":
    mode = sys.argv[1]
    if mode == "throughput":
        throughput(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), sys.argv[6])
    elif mode == "latency":
        latency(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5])
    else:
        sys.exit(__doc__)
