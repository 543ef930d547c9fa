#!/usr/bin/env python3
"""Cold migration through two real agents, with libvirt's test driver on
both ends (test:///FILE: an in-process libvirt per connection, no daemon).

host-a runs a persistent domain with one mdev vGPU on a disk both "hosts"
see; `vgpumig cold-migrate` claims a vGPU on host-b over mTLS, shuts the
guest down, defines and starts it on host-b's libvirt, commits the claim and
releases host-a.  Then the same with a fault injected at the target's start
(VGPUMIG_TEST_FAIL_AT): the rollback releases host-b's claim and the job
ends "rolled_back".  A disk host-b cannot see stops the job before the
guest is touched, and bad requests are refused with a clear line.
"""
import json
import os
import uuid

from agentlab import Lab, check, finish

DOM_UUID = "5d8f9d4e-2c61-4b8e-9a1c-3e2f8a7b6c51"
MDEV = "c2177883-f1bb-47f0-914d-32a22e3a8804"


def node_xml(path, disk, name="vm1", dom_uuid=DOM_UUID):
    dom = (f"<domain type='test'><name>{name}</name><uuid>{dom_uuid}</uuid>"
           "<memory unit='KiB'>65536</memory><os><type>hvm</type></os><devices>"
           f"<disk type='file' device='disk'><source file='{disk}'/><target dev='vda'/></disk>"
           "<hostdev mode='subsystem' type='mdev' model='vfio-pci'><source>"
           f"<address uuid='{MDEV}'/></source></hostdev></devices></domain>")
    with open(path, "w") as f:
        f.write(f"<node>{dom}</node>\n")


def live_claims(h):
    return [c for c in h.claims() if c.get("state") in ("held", "committed")]


def job_outcome(h, job_id):
    j = h.cli_json("status")
    for m in j.get("recent", []):
        if m.get("migration_id") == job_id:
            return m.get("state")
    return None


with Lab() as lab:
    a, b = lab["host-a"], lab["host-b"]
    disk = os.path.join(lab.dir, "shared-disk.img")
    open(disk, "w").close()
    a_node, b_node = os.path.join(lab.dir, "a-node.xml"), os.path.join(lab.dir, "b-node.xml")
    node_xml(a_node, disk)
    with open(b_node, "w") as f:
        f.write("<node/>\n")
    b.libvirt_uri_as_peer = f"test://{b_node}"
    a.start_emulator("A100", gpus=1)
    b.start_emulator("A100", gpus=1)
    a.create_mdev("nvidia-471", MDEV)
    a.start_agent(libvirt_uri=f"test://{a_node}")
    b.start_agent()

    # --- the happy path ---
    p = a.cli("--json", "cold-migrate", "vm1", "--to", "host-b", "--shutdown-timeout", "5s")
    check(p.returncode == 0, f"cold-migrate vm1 to host-b succeeds (rc {p.returncode}, {p.stderr.strip()!r})")
    res = json.loads(p.stdout) if p.returncode == 0 else {}
    check(res.get("state") == "moved" and res.get("to") == "host-b"
          and str(res.get("id", "")).startswith("cold-"), f"the reply names the job ({res})")
    cl = live_claims(b)
    check(len(cl) == 1 and cl[0].get("state") == "committed" and cl[0].get("domain_uuid") == DOM_UUID
          and len(cl[0].get("mapping", [])) == 1,
          f"host-b holds one committed claim for the domain's one vGPU ({cl})")
    check(job_outcome(a, res.get("id")) == "ok", "host-a's journal shows the job done")
    b.cli("gc")

    # --- a fault at the target's start: everything is undone ---
    for c in live_claims(b):
        b.local("DELETE", f"/v1/claims/{c['claim_id']}")
    a.stop_agent()
    a.start_agent(libvirt_uri=f"test://{a_node}", env={"VGPUMIG_TEST_FAIL_AT": "start_target"})
    p = a.cli("cold-migrate", "vm1", "--to", "host-b")
    err = p.stderr.strip()
    check(p.returncode == 1 and "cold migration failed at starting" in err
          and "start_target failed" in err and err.count("\n") == 0,
          f"injected start failure: one line naming the step ({err!r})")
    check(live_claims(b) == [], "host-b's claim was released by the rollback")
    log = open(a.log).read()
    check("start_source ok" in log and "release_target ok" in log and "undefine_target ok" in log,
          "rollback: undefined on host-b, restarted on host-a, claim released (agent log)")

    # --- a disk host-b cannot see: refused before the guest is touched ---
    node_xml(a_node, os.path.join(lab.dir, "only-on-a", "disk.img"), name="vm2",
             dom_uuid=str(uuid.uuid4()))
    a.stop_agent()
    a.start_agent(libvirt_uri=f"test://{a_node}")
    p = a.cli("cold-migrate", "vm2", "--to", "host-b")
    err = p.stderr.strip()
    check(p.returncode == 1 and "host-b cannot reach" in err and "only-on-a" in err
          and "shared" in err, f"unreachable disk: refused, naming the path ({err!r})")
    check(live_claims(b) == [], "no claim was made for it")
    check("shutting_down" not in open(a.log).read().split("vm2")[-1],
          "the guest was never asked to shut down")

    # --- bad requests ---
    p = a.cli("cold-migrate", "vm2", "--to", "host-a")
    check(p.returncode == 1 and "no peer 'host-a'" in p.stderr,
          f"to itself: no such peer ({p.stderr.strip()!r})")
    p = a.cli("cold-migrate", "vm2", "--to", "nowhere")
    check(p.returncode == 1 and "no peer 'nowhere'" in p.stderr, f"unknown peer ({p.stderr.strip()!r})")
    p = a.cli("cold-migrate", "nosuchvm", "--to", "host-b")
    check(p.returncode == 1 and "no domain 'nosuchvm'" in p.stderr, f"unknown domain ({p.stderr.strip()!r})")
    p = a.cli("cold-migrate", "vm2", "--to", "host-b", "--shutdown-timeout", "soon")
    check(p.returncode == 2 and "not a duration" in p.stderr, "bad --shutdown-timeout is a usage error")
    r = b.peer("POST", "/v1/disks/check", {"paths": ["../etc/shadow"]}, as_host=a)
    check(r.status == 400 and "absolute path" in r.json().get("message", ""),
          f"disk check: a relative path is refused ({r})")
    r = b.peer("POST", "/v1/disks/check", {"paths": [disk, "/nonexistent/x"]}, as_host=a)
    check(r.status == 200 and r.json() == {"missing": ["/nonexistent/x"]},
          f"disk check: only the missing path is reported ({r})")
    r = b.local("POST", "/v1/cold-migrations", {"domain": "vm1"})
    check(r.status == 400 and "'to'" in r.json().get("message", ""), f"no 'to': 400 ({r})")

finish()
