#!/usr/bin/python3
"""A real SMTP next hop for relay_test: aiosmtpd on 127.0.0.1.

Usage: relay_peer.py <spool-dir> [--no-smtputf8] [--tls <cert.pem> <key.pem>]

--tls offers STARTTLS with that certificate; the envelope records whether
the message came over TLS ("tls": true).

Prints the port it listens on (one line), then serves until stdin closes
or it gets SIGTERM. Each accepted message N is stored as <dir>/N.eml (the
bytes after DATA, dot-unstuffed) and then <dir>/N.json (the envelope);
the .json appearing means the message is complete.

Answers by local part, to test failures:
  MAIL FROM:<temp-...>    451 4.3.0     MAIL FROM:<reject-...>  550 5.7.1
  RCPT TO:<temp-...>      451 4.2.0     RCPT TO:<reject-...>    550 5.1.1
  RCPT TO:<datafail-...>  accepted, then 554 5.6.0 after the final dot
"""
import asyncio
import json
import os
import signal
import socket
import ssl
import sys

from aiosmtpd.smtp import SMTP


def local_part(address):
    return address.split("@", 1)[0]


class Handler:
    def __init__(self, directory):
        self.directory = directory
        self.count = 0

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        if local_part(address).startswith("temp-"):
            return "451 4.3.0 sender temporarily refused"
        if local_part(address).startswith("reject-"):
            return "550 5.7.1 sender refused"
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 2.1.0 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if local_part(address).startswith("temp-"):
            return "451 4.2.0 mailbox busy: " + address
        if local_part(address).startswith("reject-"):
            return "550 5.1.1 no such user: " + address
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        if any(local_part(r).startswith("datafail-") for r in envelope.rcpt_tos):
            return "554 5.6.0 content refused"
        self.count += 1
        base = os.path.join(self.directory, str(self.count))
        with open(base + ".eml", "wb") as f:
            f.write(envelope.original_content)
        meta = {
            "mail_from": "" if envelope.mail_from == "<>" else envelope.mail_from,  # the null sender
            "rcpt_tos": envelope.rcpt_tos,
            "mail_options": envelope.mail_options,
            "helo": session.host_name,
            "tls": session.ssl is not None,
            "peer_port": session.peer[1],  # the client's port: one per connection
        }
        with open(base + ".json.tmp", "w", encoding="utf-8") as f:
            json.dump(meta, f, ensure_ascii=False)
        os.rename(base + ".json.tmp", base + ".json")
        return "250 2.0.0 queued as " + str(self.count)


async def main():
    directory = sys.argv[1]
    smtputf8 = "--no-smtputf8" not in sys.argv
    tls_context = None
    if "--tls" in sys.argv:
        i = sys.argv.index("--tls")
        tls_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls_context.load_cert_chain(sys.argv[i + 1], sys.argv[i + 2])
    handler = Handler(directory)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))  # the kernel picks a free port: no race
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(handler, enable_SMTPUTF8=smtputf8, decode_data=False, hostname="relay-peer",
                     tls_context=tls_context),
        sock=sock)
    print(sock.getsockname()[1], flush=True)
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_reader(sys.stdin.fileno(), lambda: stop.set() if not os.read(sys.stdin.fileno(), 4096) else None)
    await stop.wait()
    server.close()


asyncio.run(main())
