#!/usr/bin/env python3
"""Local roles (issue 9, item 6) and what SIGHUP re-applies to the socket.

Before: socket_group meant full admin and there was no read-only role;
SIGHUP changed the group check but did not chown the socket.

Now: socket_read_group members may read (status, plan, devices, metrics,
claims) and get 403 with a clear message for anything that changes state;
socket_group members and root are admins; other users get nothing.  SIGHUP
re-applies the socket's group and mode.
"""
import grp
import json
import os
import subprocess
import sys
import uuid

from agentlab import Lab, check, claim_body, device, finish, wait_for

with Lab() as lab:
    b = lab["host-b"]
    b.start_emulator("A100", gpus=1)
    b.start_agent(socket_group="daemon", socket_read_group="nogroup")

    def log_has(text):
        return wait_for(lambda: text in open(b.log).read(), 5)

    st = os.stat(b.socket)
    check(st.st_mode & 0o777 == 0o666 and st.st_gid == grp.getgrnam("daemon").gr_gid,
          f"with a read group the socket is 0666 (uid checks gate it), group daemon ({oct(st.st_mode & 0o777)})")

    # read-only role: nobody (primary group nogroup)
    for args in (("devices",), ("claims",), ("status",), ("host",)):
        p = b.cli(*args, user="nobody")
        check(p.returncode == 0, f"read-only user: vgpumig {' '.join(args)} works ({p.stderr.strip()!r})")
    p = b.cli("gc", user="nobody")
    check(p.returncode == 1 and "read-only group" in p.stderr and "daemon" in p.stderr,
          f"read-only user: vgpumig gc is refused, naming the admin group ({p.stderr.strip()!r})")
    check(log_has("refused POST /v1/gc to uid 65534: read-only role"), "the refusal is a warning naming the uid")
    before = b.claims()
    body = claim_body("roles-1", "host-a", [device(str(uuid.uuid4()))])
    poster = ("import http.client, socket, sys\n"
              "c = http.client.HTTPConnection('localhost')\n"
              "s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); c.sock = s\n"
              "c.request('POST', '/v1/claims', body=sys.argv[2], headers={'Content-Type': 'application/json'})\n"
              "print(c.getresponse().status)\n")
    p = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", sys.executable, "-c",
                        poster, b.socket, json.dumps(body)], capture_output=True, text=True, timeout=30)
    check(p.stdout.strip() == "403", f"read-only user: POST /v1/claims is 403 ({p.stdout.strip()} {p.stderr[-200:]!r})")
    check(b.claims() == before, "no claim was made")

    # admin role: daemon (in socket_group)
    p = b.cli("gc", user="daemon")
    check(p.returncode == 0, f"socket_group member: vgpumig gc works ({p.stderr.strip()!r})")
    # anyone else: bin
    p = b.cli("claims", user="bin")
    check(p.returncode == 1 and p.stdout == "" and "without an answer" in p.stderr,
          f"a user in neither group gets nothing ({p.stderr.strip()!r})")

    # SIGHUP: drop the read group, move the admin group: socket follows
    b.write_config(socket_group="bin", socket_read_group=None)
    b.agent.send_signal(1)
    check(log_has("reloaded"), "reloaded")
    st = os.stat(b.socket)
    check(st.st_mode & 0o777 == 0o660 and st.st_gid == grp.getgrnam("bin").gr_gid,
          f"SIGHUP re-applied mode 0660 and group bin to the socket ({oct(st.st_mode & 0o777)}, gid {st.st_gid})")
    p = b.cli("claims", user="bin")
    check(p.returncode == 0, f"the new socket_group's member is answered ({p.stderr.strip()!r})")
    p = b.cli("claims", user="nobody")
    check(p.returncode == 1 and p.stdout == "", "the former read-only user gets nothing now")

finish()
