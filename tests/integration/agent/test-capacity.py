#!/usr/bin/env python3
"""Exact free counts (issue 8): GET /v1/types and `vgpumig check` count what a
claim could get, and a claim agrees.

host-a (source, libvirt_uri=none) and host-b (A100 x2 emulated).  On a fresh
host-b the driver allows 10 A100-4C per GPU (max_instance), so 20, not the 32
VFs that each show available_instances=1; 40C: 1 per GPU, so 2.  Then host-b
runs under libvirt's test driver with a DEFINED, shut-off domain holding all
twenty 4C devices: they count as used, check refuses with the numbers, and a
claim through the peer API is refused the same way.  On host-a: the agent's
cached inventory shows its own creations and removals at once and one made
behind its back after a refresh.
"""
import json
import os
import uuid

from agentlab import Lab, check, claim_body, device, domain_file, finish, wait_for

A4C, A40C = "NVIDIA A100-4C", "NVIDIA A100-40C"


def types(h, peer):
    r = h.peer("GET", "/v1/types", as_host=peer)
    return {x["name"]: x["available"] for x in (r.json() or {}).get("profiles", [])}


def holder_node(lab, ids):
    """A libvirt test-driver node file with one defined, shut-off domain
    that references every id (runstate 5 = VIR_DOMAIN_SHUTOFF)."""
    devs = "".join(f"      <hostdev mode='subsystem' type='mdev' model='vfio-pci'>"
                   f"<source><address uuid='{i}'/></source></hostdev>\n" for i in ids)
    node = (f"<node>\n  <domain type='test' xmlns:test='http://libvirt.org/schemas/domain/test/1.0'>\n"
            f"    <name>holder</name>\n    <uuid>{uuid.uuid4()}</uuid>\n"
            f"    <memory>1048576</memory>\n    <os><type>hvm</type></os>\n"
            f"    <devices>\n{devs}    </devices>\n    <test:runstate>5</test:runstate>\n"
            f"  </domain>\n</node>\n")
    path = os.path.join(lab.dir, "holder-node.xml")
    with open(path, "w") as f:
        f.write(node)
    return path


def check_json(a, name, to, xml):
    p = a.cli("--json", "check", name, "--to", to, "--xml", xml)
    return p, json.loads(p.stdout or "{}")


def profile_check(j):
    return [x for x in j.get("checks", []) if x.get("name") == "profile"]


with Lab(("host-a", "host-b")) as lab:
    a, b = lab["host-a"], lab["host-b"]
    a.start_emulator("A100", gpus=2)
    b.start_emulator("A100", gpus=2)
    src = str(uuid.uuid4())
    a.create_mdev("nvidia-471", src)
    a.start_agent()
    b.start_agent()
    x = domain_file(lab, "vm1", src)

    # --- the agent's cached inventory: own writes at once, others' soon ---
    def device_ids(h):
        r = h.local("GET", "/v1/devices")
        return {d["id"] for d in (r.json() or {}).get("devices", [])}

    ids0 = device_ids(a)
    check(ids0 == {src}, f"host-a's device list has the vGPU made before it started ({ids0})")
    # two devices: the free one is reused, the second is created
    r = a.peer("POST", "/v1/claims", claim_body("cache", "host-b", [device(str(uuid.uuid4())),
                                                                    device(str(uuid.uuid4()))]),
               as_host=b)
    j = r.json() or {}
    targets = {m["target_id"] for m in (j.get("mapping") or j.get("devices") or [])}
    made = targets - {src}
    check(r.status in (200, 201) and len(made) == 1 and made <= device_ids(a),
          f"a device the agent created for a claim is listed at once (patched in) ({made})")
    a.peer("DELETE", f"/v1/claims/{j.get('claim_id', '')}", as_host=b)
    check(made and not (made & device_ids(a)), "and gone at once after its release")
    behind = str(uuid.uuid4())
    a.create_mdev("nvidia-473", behind, parent=a.parents()[-1])  # an 8C on the second GPU
    seen = wait_for(lambda: behind in device_ids(a), timeout=5)
    check(seen, "a device made behind the agent's back is listed after the cache's refresh")
    t = types(a, b)
    check(t.get(A4C) == 10 and t.get(A40C) == 0,
          f"and counted: its GPU takes no 4C or 40C now ({t.get(A4C)} 4C, {t.get(A40C)} 40C)")

    # --- fresh host: per-GPU max_instance, not one per VF ---
    t = types(b, a)
    check(t.get(A4C) == 20, f"fresh A100 x2: 20 free 4C (max_instance 10 per GPU), not 32 ({t.get(A4C)})")
    check(t.get(A40C) == 2, f"fresh A100 x2: 2 free 40C (1 per GPU) ({t.get(A40C)})")
    p, j = check_json(a, "vm1", "host-b", x)
    pc = profile_check(j)
    check(pc and pc[0]["ok"] and "20 free" in pc[0]["message"],
          f"check reports 20 free 4C on host-b ({pc[0]['message'] if pc else None!r})")

    # the count is what a claim gets: 20 at once succeed ...
    devs = [device(str(uuid.uuid4())) for _ in range(20)]
    r = b.peer("POST", "/v1/claims", claim_body("twenty", "host-a", devs), as_host=a)
    check(r.status in (200, 201), f"a claim for 20 4C succeeds ({r.status})")
    t = types(b, a)
    check(t.get(A4C) == 0 and t.get(A40C) == 0,
          f"while held: 0 free 4C and 0 free 40C (homogeneous rule) ({t.get(A4C)}, {t.get(A40C)})")
    claim_id = (r.json() or {}).get("claim_id", "")
    r = b.peer("DELETE", f"/v1/claims/{claim_id}", as_host=a)
    check(r.status in (200, 204), f"release of the 20 ({r.status})")
    # ... and a 21st is refused in the same words
    devs = [device(str(uuid.uuid4())) for _ in range(21)]
    r = b.peer("POST", "/v1/claims", claim_body("twentyone", "host-a", devs), as_host=a)
    msg = (r.json() or {}).get("message", "")
    check(r.status >= 400 and "20 of 20 available" in msg, f"a claim for 21 is refused: {msg!r}")

    # --- a defined (shut-off) domain holds all twenty 4C devices ---
    b.stop_agent()
    ids = [str(uuid.uuid4()) for _ in range(20)]
    for i in ids:
        b.create_mdev("nvidia-471", i)
    node = holder_node(lab, ids)
    b.start_agent(libvirt_uri=f"test://{node}")
    t = types(b, a)
    check(t.get(A4C) == 0, f"devices of a defined domain count as used: 0 free 4C ({t.get(A4C)})")
    p, j = check_json(a, "vm1", "host-b", x)
    pc = profile_check(j)
    check(p.returncode == 1 and pc and not pc[0]["ok"] and "0 free" in pc[0]["message"],
          f"check refuses: {pc[0]['message'] if pc else p.stderr!r}")
    txt = a.cli("check", "vm1", "--to", "host-b", "--xml", x)
    check(any(l.startswith("FAIL profile") and "host-b" in l for l in txt.stdout.splitlines()),
          "`vgpumig check` prints a FAIL profile line naming host-b")
    r = b.peer("POST", "/v1/claims", claim_body("held", "host-a", [device(str(uuid.uuid4()))]),
               as_host=a)
    msg = (r.json() or {}).get("message", "")
    check(r.status >= 400 and (r.json() or {}).get("code") == "no_capacity" and "0 of 20 available; 20 assigned" in msg,
          f"and the claim migrate would make is refused alike: {msg!r}")
    check(sorted(b.mdevs()) == sorted(ids), "nothing was created or removed on host-b")

finish()
