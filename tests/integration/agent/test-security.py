#!/usr/bin/env python3
"""Bad callers and bad input change nothing.

Local API: a user that is neither root nor in socket_group gets nothing, even
when the socket file itself is opened up.  Peer API: no client certificate,
or one from another CA, gets no answer; local-only routes are not on it.
Both: malformed JSON, oversized bodies, unknown profiles, path tricks in ids
and paths get a 4xx with {"code","message"}, and claims and sysfs are the same
before and after.
"""
import hashlib
import json
import os
import subprocess
import ssl
import uuid

from agentlab import MKCERTS, Lab, check, claim_body, device, finish


def snapshot(h):
    return (json.dumps(h.claims(), sort_keys=True), h.mdevs())


def clear_error(r):
    j = r.json()
    return isinstance(j, dict) and isinstance(j.get("code"), str) and j["code"] \
        and isinstance(j.get("message"), str) and len(j["message"]) > 10


with Lab() as lab:
    a, b = lab["host-a"], lab["host-b"]
    a.start_emulator("A100", gpus=1)
    b.start_emulator("A100", gpus=1)
    a.start_agent()
    b.start_agent()
    U = str(uuid.uuid4())
    r = b.peer("POST", "/v1/claims", claim_body("sec-1", "host-a", [device(U)]), as_host=a)
    check(r.status == 201, f"a good claim for a baseline (got {r})")
    base = snapshot(b)
    other = os.path.join(lab.certs, "other")

    # --- local API: wrong uid ---
    p = b.cli("claims", user="nobody")
    check(p.returncode == 1 and p.stdout == "" and p.stderr.startswith("vgpumig: ")
          and "permission denied" in p.stderr,
          f"user nobody: refused by the socket's mode, nothing printed ({p.stderr.strip()!r})")
    st = os.stat(b.socket)
    check(st.st_mode & 0o777 in (0o660, 0o600), f"socket mode is {oct(st.st_mode & 0o777)}")
    os.chmod(b.socket, 0o666)  # even with the file open to all, the peer uid check refuses
    p = b.cli("claims", user="nobody")
    check(p.returncode == 1 and p.stdout == "" and "closed the connection without an answer" in p.stderr,
          f"user nobody, socket opened up: the peer uid check gives nothing ({p.stderr.strip()!r})")
    p = b.cli("gc", user="nobody")
    check(p.returncode == 1 and p.stdout == "", "user nobody cannot run gc")
    os.chmod(b.socket, st.st_mode & 0o777)
    check(snapshot(b) == base, "wrong uid: no state change")

    # --- a member of socket_group is let in ---
    b.stop_agent()
    b.start_agent(socket_group="nogroup")
    p = b.cli("claims", user="nobody")
    check(p.returncode == 0 and "sec-1" not in p.stderr and U in p.stdout,
          f"user nobody in socket_group 'nogroup' is answered ({p.stderr.strip()!r})")
    b.stop_agent()
    b.start_agent()
    check(snapshot(b) == base, "restarts changed nothing")

    # --- scripts/mkcerts is idempotent ---
    def digests():
        out = {}
        for root, _, files in os.walk(lab.certs):
            for f in files:
                out[os.path.join(root, f)] = hashlib.sha256(open(os.path.join(root, f), "rb").read()).hexdigest()
        return out
    before_certs = digests()
    mk = subprocess.run([MKCERTS, lab.certs, "host-a", "host-b"], capture_output=True)
    check(mk.returncode == 0 and digests() == before_certs, "mkcerts run again changes no file")

    # --- peer API: certificates ---
    def refused(**kw):
        try:
            r = b.peer("GET", "/v1/claims", **kw)
            return f"answered {r.status}"
        except (ssl.SSLError, ConnectionError, OSError):
            return None

    check(refused(cert=False) is None, "a peer with no certificate gets no answer")
    check(refused(cert=os.path.join(other, "host-a.pem"), key=os.path.join(other, "host-a-key.pem")) is None,
          "a peer with a certificate from another CA gets no answer")
    r = b.peer("GET", "/v1/claims", as_host=a)
    check(r.status == 200, "the same request with the fleet certificate is answered")
    try:
        b.peer("GET", "/v1/host", as_host=a, ca=os.path.join(other, "ca.pem"))
        check(False, "a client trusting another CA must not accept the agent's certificate")
    except ssl.SSLError:
        check(True, "a client trusting another CA refuses the agent's certificate")
    for method, path in (("POST", "/v1/gc"), ("GET", "/v1/devices"), ("POST", "/v1/hook/migrate-begin")):
        r = b.peer(method, path, "<domain/>" if "hook" in path else {}, as_host=a,
                   ctype="application/xml" if "hook" in path else "application/json")
        check(r.status == 404, f"local-only {method} {path} is not on the peer API ({r.status})")
    check(snapshot(b) == base, "bad certificates: no state change")

    # --- bad input, on both APIs ---
    def both(method, path, body, ctype="application/json"):
        return [("local", b.local(method, path, body, ctype=ctype)),
                ("peer", b.peer(method, path, body, as_host=a, ctype=ctype))]

    cases = [
        ("malformed JSON", "POST", "/v1/claims", '{"migration_id": "x", "devices": [', 400),
        ("not an object", "POST", "/v1/claims", "[1, 2, 3]", 400),
        ("missing devices", "POST", "/v1/claims", {"migration_id": "m", "domain_uuid": str(uuid.uuid4()),
                                                   "domain_name": "x", "source_host": "host-a"}, 400),
        ("wrong type", "POST", "/v1/claims", claim_body("sec-t", "host-a", [dict(device(str(uuid.uuid4())),
                                                                                  framebuffer_bytes="lots")]), 400),
        ("path trick in source id", "POST", "/v1/claims",
         claim_body("sec-p", "host-a", [device("../../../../etc/passwd")]), 400),
        ("path trick in type id", "POST", "/v1/claims",
         claim_body("sec-q", "host-a", [device(str(uuid.uuid4()), type_id="../../nvidia-471")]), 400),
        ("path trick in domain uuid", "POST", "/v1/claims",
         claim_body("sec-r", "host-a", [device(str(uuid.uuid4()))], domain_uuid="../x"), 400),
        ("control chars in migration id", "POST", "/v1/claims",
         claim_body("sec\n\x01", "host-a", [device(str(uuid.uuid4()))]), 400),
        ("wrong content type", "POST", "/v1/claims", "migration_id=1", 415),
    ]
    for name, method, path, body, want in cases:
        ctype = "application/x-www-form-urlencoded" if want == 415 else "application/json"
        for api, r in both(method, path, body, ctype):
            check(400 <= r.status < 500 and clear_error(r),
                  f"{name} ({api}): {r.status} with a clear message ({r.body[:160]!r})")
    for api, r in both("POST", "/v1/claims", claim_body("sec-u", "host-a",
                                                        [device(str(uuid.uuid4()), "NVIDIA A100-3C", 3072, "nvidia-999")])):
        j = r.json() or {}
        check(400 <= r.status < 500 and clear_error(r) and "A100-3C" in j.get("message", ""),
              f"unknown profile ({api}): {r.status}, names it: {j.get('message')!r}")

    big = {"migration_id": "big", "pad": "x" * (2 * 1024 * 1024)}
    for api, r in both("POST", "/v1/claims", big):
        check(r.status == 413 and clear_error(r), f"2 MiB JSON body ({api}): 413 ({r.status})")
    # claims are small: a 100 KiB claim body is refused unread (it used to be
    # parsed, ~20x its size in memory, up to 1 MiB per request)
    mid = {"migration_id": "mid", "pad": "x" * (100 * 1024)}
    for api, r in both("POST", "/v1/claims", mid):
        check(r.status == 413 and "64 KiB" in r.json().get("message", ""),
              f"100 KiB claim body ({api}): 413 naming the route's limit ({r.body[:120]!r})")
    many = claim_body("sec-many", "host-a", [device(str(uuid.uuid4())) for _ in range(1000)])
    for api, r in both("POST", "/v1/claims", many):
        check(400 <= r.status < 500 and clear_error(r), f"1000 devices in one claim ({api}): {r.status}")

    for path in ("/v1/claims/..%2F..%2Fetc/commit", "/v1/claims/%2e%2e/commit",
                 "/v1/claims/" + "a" * 200 + "/commit", "/v1/claims/x;rm%20-rf/commit",
                 "/v1/claims/../gc", "/v1/../v1/gc"):
        for api, r in both("POST", path, {}):
            check(400 <= r.status < 500, f"POST {path} ({api}): {r.status}")
    for api, r in both("DELETE", "/v1/claims/%00", None):
        check(400 <= r.status < 500, f"DELETE /v1/claims/%00 ({api}): {r.status}")

    r = b.local("POST", "/v1/hook/migrate-begin", b"<domain><name>x</name", ctype="application/xml")
    check(400 <= r.status < 500 and clear_error(r), f"truncated domain XML to the hook route: {r.status}")
    r = b.local("POST", "/v1/hook/migrate-begin",
                b'<!DOCTYPE d [<!ENTITY e SYSTEM "file:///etc/passwd">]><domain><name>&e;</name></domain>',
                ctype="application/xml")
    check(400 <= r.status < 500 and b"root:" not in r.body, f"external entity in domain XML: {r.status}, not expanded")
    r = b.local("POST", "/v1/hook/event", '{"op": 1}')
    check(400 <= r.status < 500 and clear_error(r), f"bad hook event: {r.status}")

    check(snapshot(b) == base, "bad input: claims and sysfs unchanged")
    check(b.agent.poll() is None, "the agent is still running")

finish()
