#!/usr/bin/env python3
"""Peer identity and authorisation on the peer API (issue 9, items 1 and 4).

Reproduced before the fix: any certificate signed by tls_ca could list every
claim, release another host's committed claim (its mdev vanished) and claim
in another host's name; TLS 1.0/1.1 with CBC ciphers and a serverAuth-only
client certificate were accepted; there was no CRL and no reload.

Now: a certificate is refused at the handshake (warning with its subject)
unless it verifies, carries clientAuth, is not revoked and names exactly one
[peer NAME]; a peer sees and changes only its own claims, cannot release a
committed claim, cannot claim as another host; the journal names who asked;
SIGHUP reloads certificate, key and CRL for new connections.
"""
import os
import shutil
import signal
import socket
import sqlite3
import ssl
import subprocess
import uuid

from agentlab import MKCERTS, Lab, check, claim_body, device, finish, wait_for


def refused(h, cert, key):
    """None when the handshake (or the first request) fails, else a description."""
    try:
        r = h.peer("GET", "/v1/claims", cert=cert, key=key)
        return f"answered {r.status}"
    except (ssl.SSLError, ConnectionError, OSError):
        return None


def log_has(h, text):
    return wait_for(lambda: text in open(h.log).read(), 5)


def gnutls_handshake(h, priority, cert, key):
    """True when gnutls-cli completes a handshake with this priority string."""
    p = subprocess.run(["gnutls-cli", "--x509cafile", h.lab.ca, "--x509certfile", cert,
                        "--x509keyfile", key, "--priority", priority, "-p", str(h.port),
                        "127.0.0.1"],
                       input=b"", capture_output=True, timeout=30)
    return p.returncode == 0 and b"Handshake was completed" in p.stdout + p.stderr


def server_cert_der(h):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(h.lab.ca)
    ctx.load_cert_chain(h.lab["host-a"].cert, h.lab["host-a"].key)
    ctx.check_hostname = False
    with socket.create_connection(("127.0.0.1", h.port), timeout=10) as s:
        with ctx.wrap_socket(s) as t:
            return t.getpeercert(binary_form=True)


def journal(h):
    db = sqlite3.connect(f"file:{os.path.join(h.state, 'vgpumig.db')}?mode=ro", uri=True)
    try:
        return db.execute("SELECT step, detail FROM journal ORDER BY id").fetchall()
    finally:
        db.close()


with Lab(names=("host-a", "host-b", "host-c")) as lab:
    a, b, c = lab["host-a"], lab["host-b"], lab["host-c"]
    b.start_emulator("A100", gpus=1)
    b.start_agent()
    bad = os.path.join(lab.certs, "bad")

    # --- who may connect: refused at the handshake, with the subject logged ---
    check(refused(b, a.cert, a.key) is not None, "host-a's certificate is answered")
    check(refused(b, os.path.join(bad, "nopeer.pem"), os.path.join(bad, "nopeer-key.pem")) is None,
          "a certificate from the fleet CA that names no [peer] gets no answer")
    check(log_has(b, "certificate 'CN=stranger") and log_has(b, "names no [peer NAME]"),
          "the refusal is a warning naming the certificate's subject and the reason")
    check(refused(b, os.path.join(bad, "host-a-serveronly.pem"),
                  os.path.join(bad, "host-a-serveronly-key.pem")) is None,
          "a serverAuth-only certificate naming host-a is refused as a client")
    check(log_has(b, "lacks the TLS client purpose"), "the log says the clientAuth purpose is missing")
    revoked = (os.path.join(bad, "host-a-revoked.pem"), os.path.join(bad, "host-a-revoked-key.pem"))
    check(refused(b, *revoked) is not None, "without tls_crl, the later-revoked certificate still works")

    # --- TLS versions and ciphers (gnutls-cli offers what we ask it to) ---
    check(gnutls_handshake(b, "NORMAL:-VERS-ALL:+VERS-TLS1.2", a.cert, a.key),
          "TLS 1.2 with an AEAD cipher completes (control)")
    check(gnutls_handshake(b, "NORMAL:-VERS-ALL:+VERS-TLS1.3", a.cert, a.key),
          "TLS 1.3 completes")
    for prio, what in (("NORMAL:-VERS-ALL:+VERS-TLS1.1:+VERS-TLS1.0", "TLS 1.0/1.1"),
                       ("NORMAL:-VERS-ALL:+VERS-TLS1.2:-CIPHER-ALL:+AES-128-CBC:+AES-256-CBC:"
                        "-MAC-ALL:+SHA1:+SHA256", "TLS 1.2 with CBC-SHA ciphers")):
        check(not gnutls_handshake(b, prio, a.cert, a.key), f"{what} is refused")

    # --- SIGHUP: CRL and a rotated certificate apply to new connections ---
    before = server_cert_der(b)
    rot = os.path.join(lab.dir, "rotated")
    os.makedirs(rot)
    for f in ("ca.pem", "ca-key.pem"):
        shutil.copy(os.path.join(lab.certs, f), rot)
    subprocess.run([MKCERTS, rot, "host-b"], check=True)
    b.write_config(tls_crl=os.path.join(lab.certs, "crl.pem"),
                   tls_cert=os.path.join(rot, "host-b.pem"), tls_key=os.path.join(rot, "host-b-key.pem"))
    b.agent.send_signal(signal.SIGHUP)
    check(log_has(b, "TLS certificate, key, CA and CRL reloaded"), "SIGHUP reloads the TLS credentials")
    check(refused(b, *revoked) is None, "after the reload the revoked certificate is refused")
    check(log_has(b, "revoked"), "the log says it is revoked")
    after = server_cert_der(b)
    check(after != before and after == ssl.PEM_cert_to_DER_cert(open(os.path.join(rot, "host-b.pem")).read()),
          "new connections get the rotated certificate, without a restart")
    check(refused(b, a.cert, a.key) is not None, "host-a is still answered after the rotation")

    # --- how migrations travel, as `vgpumig host` shows it (local API only) ---
    j = b.cli_json("host")
    pa = (j.get("peers") or {}).get("host-a", {})
    check(pa.get("migration") == "clear text" and pa.get("libvirt_uri", "").startswith("qemu+tcp://"),
          f"vgpumig host shows that migrations to host-a are clear text, as its config says ({pa})")
    r = b.peer("GET", "/v1/host", as_host=a)
    check(r.status == 200 and "peers" not in (r.json() or {}), "a peer does not learn this host's other peers")

    # --- claims belong to the peer that made them ---
    ua, uc = str(uuid.uuid4()), str(uuid.uuid4())
    r = b.peer("POST", "/v1/claims", claim_body("auth-a", "host-a", [device(ua)]), as_host=a)
    check(r.status == 201, f"host-a claims ({r.status})")
    ca = (r.json() or {}).get("claim_id", "none")
    r = b.peer("POST", "/v1/claims", claim_body("auth-c1", "host-a", [device(uc)]), as_host=c)
    check(r.status == 403 and "host-c" in (r.json() or {}).get("message", ""),
          f"host-c cannot claim as host-a: 403 naming its own peer ({r.body[:160]!r})")
    r = b.peer("POST", "/v1/claims", claim_body("auth-c", "host-c", [device(uc)]), as_host=c)
    check(r.status == 201 and (r.json() or {}).get("source_host") == "host-c", f"host-c claims for itself ({r.status})")
    cc = (r.json() or {}).get("claim_id", "none")

    r = b.peer("GET", "/v1/claims", as_host=c)
    ids = [x["claim_id"] for x in (r.json() or {}).get("claims", [])]
    check(r.status == 200 and ids == [cc], f"host-c lists only its own claim ({ids})")
    for method, path in (("GET", f"/v1/claims/{ca}"), ("POST", f"/v1/claims/{ca}/commit"),
                         ("DELETE", f"/v1/claims/{ca}")):
        r = b.peer(method, path, {} if method == "POST" else None, as_host=c)
        check(r.status == 404, f"host-c: {method} on host-a's claim is 404 ({r.status})")
    check(b.local("GET", f"/v1/claims/{ca}").json().get("state") == "held", "host-a's claim is untouched")

    r = b.peer("POST", f"/v1/claims/{ca}/commit", {}, as_host=a)
    check(r.status == 200 and (r.json() or {}).get("state") == "committed", f"host-a commits its claim ({r.status})")
    target = ((r.json() or {}).get("mapping") or [{}])[0].get("target_id")
    r = b.peer("GET", "/v1/claims", as_host=c)
    check(not (r.json() or {}).get("assignments"), "host-c does not see host-a's assignment")
    r = b.peer("DELETE", f"/v1/claims/{ca}", as_host=a)
    check(r.status == 409 and (r.json() or {}).get("code") == "claim_committed",
          f"releasing a committed claim over the peer API is refused ({r.body[:200]!r})")
    check(target in b.mdevs(), "the committed claim's mdev is still in sysfs")
    r = b.local("DELETE", f"/v1/claims/{cc}")
    check(r.status == 200 and r.json().get("state") == "released", "a local admin may release any claim")

    # --- the journal names who asked ---
    rows = journal(b)
    want = [("claim", f"{ca} by peer host-a"), ("claim", f"{cc} by peer host-c"),
            ("commit", f"{ca} by peer host-a"), ("release", f"{cc} by uid {os.getuid()}")]
    check(all(w in rows for w in want), f"journal rows name the actor ({rows})")

finish()
