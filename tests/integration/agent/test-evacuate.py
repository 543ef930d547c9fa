#!/usr/bin/env python3
"""Evacuating host-a onto host-b and host-c: three real agents, libvirt's
test driver on every host (test:///FILE, no daemon, no live migration).

host-a runs four VMs: vm1 (one A100-4C), vm2 (two A100-4C), vm3 and vm4 (one
A100-10C each).  host-b has room for two 10C and, its GPU hosting 10C, no 4C;
host-c room for three 4C and no 10C: neither alone takes all.  Checked:
  - evacuate refuses to run for another host;
  - --dry-run places every VM (4C ones on host-c, 10C ones on host-b), and
    with --to host-b only, names the VMs left behind and why;
  - without --cold-fallback, the test driver cannot migrate live: every VM
    is left behind with the reason, the evacuation ends;
  - with --cold-fallback every VM moves cold, each target holds a committed
    claim per VM it took;
  - SIGKILL of host-a's agent in the middle of an evacuation, then restart:
    the evacuation resumes from the store and completes.
"""
import json
import os
import signal
import time
import uuid

from agentlab import Lab, check, claim_body, device, finish, wait_for

P4, P10 = "NVIDIA A100-4C", "NVIDIA A100-10C"
T4, T10 = "nvidia-471", "nvidia-474"

VMS = {  # name: (uuid, [(type, mdev uuid)])
    "vm1": (str(uuid.uuid4()), [(T4, str(uuid.uuid4()))]),
    "vm2": (str(uuid.uuid4()), [(T4, str(uuid.uuid4())), (T4, str(uuid.uuid4()))]),
    "vm3": (str(uuid.uuid4()), [(T10, str(uuid.uuid4()))]),
    "vm4": (str(uuid.uuid4()), [(T10, str(uuid.uuid4()))]),
}


def node_xml(path, disk):
    doms = []
    for name, (du, devs) in VMS.items():
        hd = "".join("<hostdev mode='subsystem' type='mdev' model='vfio-pci'><source>"
                     f"<address uuid='{m}'/></source></hostdev>" for _, m in devs)
        doms.append(f"<domain type='test'><name>{name}</name><uuid>{du}</uuid>"
                    "<memory unit='KiB'>65536</memory><os><type>hvm</type></os><devices>"
                    f"<disk type='file' device='disk'><source file='{disk}'/><target dev='vda'/>"
                    f"</disk>{hd}</devices></domain>")
    with open(path, "w") as f:
        f.write("<node>" + "".join(doms) + "</node>\n")


def fill(h, src, profile, type_id, n, tag):
    """Hold n devices of a profile on h with claims (as other migrations would)."""
    devs = [device(str(uuid.uuid4()), profile=profile, fb_mib=4096 if profile == P4 else 10240,
                   type_id=type_id) for _ in range(n)]
    r = h.peer("POST", "/v1/claims", claim_body(tag, src.name, devs, domain_name=tag), as_host=src)
    check(r.status == 201, f"{h.name}: {n} x {profile} held for the scenario ({r})")


def by_name(snap):
    return {v["domain"]: v for v in snap.get("vms", [])}


def committed(h):
    return {c["domain_uuid"] for c in h.claims() if c.get("state") == "committed"}


def evacuate(a, *args, timeout=120):
    p = a.cli("--json", "evacuate", "host-a", *args)
    lines = [json.loads(line) for line in p.stdout.splitlines() if line.startswith("{")]
    return p, lines


with Lab(("host-a", "host-b", "host-c")) as lab:
    a, b, c = lab["host-a"], lab["host-b"], lab["host-c"]
    disk = os.path.join(lab.dir, "shared.img")
    open(disk, "w").close()
    a_node = os.path.join(lab.dir, "a-node.xml")
    node_xml(a_node, disk)
    for h in (b, c):
        n = os.path.join(lab.dir, f"{h.name}-node.xml")
        with open(n, "w") as f:
            f.write("<node/>\n")
        h.libvirt_uri_as_peer = f"test://{n}"
    a.start_emulator("A100", gpus=2)
    b.start_emulator("A100", gpus=1)
    c.start_emulator("A100", gpus=1)
    for _, devs in VMS.values():
        for t, m in devs:
            a.create_mdev(t, m)
    a.start_agent(libvirt_uri=f"test://{a_node}")
    b.start_agent()
    c.start_agent()
    fill(b, a, P10, T10, 2, "fill-b")
    fill(c, a, P4, T4, 7, "fill-c")

    # --- only on the host being emptied ---
    p = a.cli("evacuate", "host-b")
    check(p.returncode == 1 and "run 'vgpumig evacuate host-b' on host-b" in p.stderr,
          f"another host: refused, naming where to run it ({p.stderr.strip()!r})")

    # --- dry run ---
    p = a.cli("--json", "evacuate", "host-a", "--dry-run")
    snap = json.loads(p.stdout) if p.returncode == 0 else {}
    vms = by_name(snap)
    check(p.returncode == 0 and len(vms) == 4, f"dry run: four VMs placed (rc {p.returncode}, {p.stderr.strip()!r})")
    check({n: v.get("target") for n, v in vms.items()} ==
          {"vm1": "host-c", "vm2": "host-c", "vm3": "host-b", "vm4": "host-b"},
          f"4C VMs on host-c, 10C VMs on host-b ({ {n: v.get('target') for n, v in vms.items()} })")
    p = a.cli("evacuate", "host-a", "--dry-run", "--to", "host-b")
    check(p.returncode == 1 and "left_behind" in p.stdout and "no room for 'NVIDIA A100-4C'" in p.stdout
          and "2 of 4 VM(s) placed" in p.stdout,
          f"dry run to host-b only: the 4C VMs left behind, why ({p.stdout.strip()!r})")
    check(all(h.claims() and len([x for x in h.claims() if x.get("state") == "held"]) == 1
              for h in (b, c)), "a dry run claims nothing")

    # --- live only: the test driver cannot migrate, every VM stays with a reason ---
    p, lines = evacuate(a)
    done = lines[-1] if lines else {}
    check(p.returncode == 1 and done.get("event") == "done" and done.get("state") == "done",
          f"live-only evacuation ends (rc {p.returncode}, {p.stderr.strip()!r})")
    left = [v for v in done.get("vms", []) if v["state"] == "left_behind"]
    check(len(left) == 4 and all(v.get("code") and v.get("message") for v in left),
          f"every VM left behind with a code and a reason ({[(v['domain'], v.get('code')) for v in left]})")
    check(done.get("summary", {}).get("left_behind") == 4, "the summary counts them")

    # --- with cold fallback every VM moves ---
    p, lines = evacuate(a, "--cold-fallback")
    done = lines[-1] if lines else {}
    states = {v["domain"]: (v["state"], v.get("target")) for v in done.get("vms", [])}
    check(p.returncode == 0 and all(s == "cold_moved" for s, _ in states.values()) and len(states) == 4,
          f"--cold-fallback: all four moved cold ({states}, {p.stderr.strip()!r})")
    check(any(e.get("event") == "progress" for e in lines[:-1]), "progress events before the end")
    check(committed(b) >= {VMS["vm3"][0], VMS["vm4"][0]} and
          committed(c) >= {VMS["vm1"][0], VMS["vm2"][0]},
          "each target holds a committed claim for each VM it took")
    p = a.cli("evacuations")
    lst = json.loads(p.stdout) if p.returncode == 0 else {}
    check(len(lst.get("evacuations", [])) == 2 and all(e["state"] == "done" for e in lst["evacuations"]),
          "vgpumig evacuations lists both runs, done")

    # --- SIGKILL mid-evacuation, restart: it resumes and completes ---
    for h in (b, c):
        for cl in h.claims():
            if cl.get("source_host") == "host-a" and cl.get("migration_id", "").startswith("cold-"):
                h.local("DELETE", f"/v1/claims/{cl['claim_id']}")
    a.stop_agent()
    a.start_agent(libvirt_uri=f"test://{a_node}", env={"VGPUMIG_TEST_CRASH_AT": "cold_start_target"})
    p = a.cli("evacuate", "host-a", "--cold-fallback")
    rc = wait_for(lambda: a.agent.poll() is not None, timeout=60)
    check(rc is not None and a.agent.returncode == -signal.SIGKILL,
          f"host-a's agent was killed mid-evacuation (rc {a.agent.returncode})")
    a.agent = None
    a.start_agent(libvirt_uri=f"test://{a_node}")
    time.sleep(0.5)

    def finished():
        j = a.cli_json("evacuations")
        e = j["evacuations"][0]
        return e if e["state"] == "done" else None

    e = wait_for(finished, timeout=120, step=0.5)
    check(e is not None, "after the restart the evacuation ran to its end")
    states = {v["domain"]: v["state"] for v in (e or {}).get("vms", [])}
    check(states and all(s == "cold_moved" for s in states.values()),
          f"every VM moved exactly once in the end ({states})")
    check("resumed after a restart" in open(a.log, errors="replace").read(), "the agent log says it resumed")
    live = {}
    for h in (b, c):
        for cl in h.claims():
            if cl.get("state") in ("held", "committed") and cl.get("source_host") == "host-a" \
                    and cl.get("migration_id", "").startswith("cold-"):
                live.setdefault(cl["domain_uuid"], []).append(cl["state"])
    check(sorted(live) == sorted(u for u, _ in VMS.values())
          and all(v == ["committed"] for v in live.values()),
          f"one committed claim per VM, none left held by the killed job ({live})")

finish()
