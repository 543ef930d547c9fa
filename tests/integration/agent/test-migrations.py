#!/usr/bin/env python3
"""/v1/migrations on emulator hosts, as far as it goes without a real QEMU.

  - refusals, each a clear one-line error that changes nothing: no libvirt
    (libvirt_uri=none), unknown peer, this host, malformed body and limits;
  - host-a on libvirt's test driver (test:///default, in the agent's own
    process): a real job runs inspect and the checks, and is refused by them
    (the test driver's QEMU is too old); the refusal is in the store;
  - SIGKILL right after the job recorded its "checking" phase (test fault
    point job-checking): after a restart the job is found in the store,
    resumed and finished, and `vgpumig status` shows it;
  - cordon: a cordoned host refuses claims from the peer API and the hook
    with an error naming it, `vgpumig host` shows it, it survives a
    restart, uncordon lifts it;
  - libvirt unreachable: a held claim past its lease is neither expired nor
    are its devices removed, new claims are served only by new devices, until
    libvirt answers again.
"""
import json
import time
import uuid

from agentlab import METADATA_NS, Lab, check, claim_body, device, finish, wait_for

NOWHERE = "qemu+tcp://127.0.0.1:1/system"


def post_migration(h, body):
    return h.local("POST", "/v1/migrations", json.dumps(body))


def wait_done(h, mid, timeout=30):
    def done():
        s = h.local("GET", f"/v1/migrations/{mid}")
        return s.status == 200 and s.json().get("state") != "running"
    wait_for(done, timeout, 0.05)
    return h.local("GET", f"/v1/migrations/{mid}").json()


def refusals(a):
    r = post_migration(a, {"domain": "vm1", "to": "host-b"})
    check(r.status == 409 and r.json().get("code") == "no_libvirt"
          and "libvirt_uri=none" in r.json().get("message", ""),
          f"libvirt_uri=none: refused with no_libvirt ({r.status} {r.body[:120]!r})")
    r = post_migration(a, {"domain": "vm1", "to": "host-zz"})
    check(r.status == 404 or r.json().get("code") == "unknown_peer",
          f"unknown peer refused, naming the fix ({r.body[:160]!r})")
    check("[peer host-zz]" in r.json().get("message", ""), "the message says which section to add")
    r = post_migration(a, {"domain": "vm1", "to": "host-b", "max_downtime_ms": "soon"})
    check(r.status == 400 and "max_downtime_ms" in r.json().get("message", ""),
          f"a malformed limit is refused naming the field ({r.body[:120]!r})")
    r = a.local("POST", "/v1/migrations", "{not json")
    check(r.status == 400, f"malformed JSON refused ({r.status})")
    p = a.cli("migrate", "vm1", "--to", "host-b")
    check(p.returncode == 1 and "libvirt" in p.stderr and len(p.stderr.strip().splitlines()) == 1,
          f"`vgpumig migrate` prints the agent's one-line reason ({p.stderr.strip()!r})")
    st = a.cli_json("status")
    check(st.get("migrations") == [] and st.get("recent") == [],
          "nothing was recorded for a refused request")


def job_on_test_driver(a):
    a.stop_agent()
    a.start_agent(libvirt_uri="test:///default")
    r = post_migration(a, {"domain": "test", "to": "host-a"})
    check(r.status == 400 and "this host" in r.json().get("message", ""),
          "a migration to the host itself is refused")
    r = post_migration(a, {"domain": "test", "to": "host-b", "max_downtime_ms": 0})
    check(r.status == 202, f"the job starts ({r.status} {r.body[:100]!r})")
    s = wait_done(a, r.json()["migration_id"])
    check(s.get("limits", {}).get("max_downtime_ms") == 0, "a limit of 0 is kept as given, not as unset")
    err = s.get("error") or {}
    check(s["state"] == "failed" and err.get("code") == "qemu_too_old"
          and list(s["phase_started_ms"]) == ["inspecting", "checking"],
          f"the job inspected, checked and was refused by the checks ({s['state']}, {err}, "
          f"{list(s['phase_started_ms'])})")
    check(s["claim"] is None, "nothing was claimed on the target")
    p = a.cli("migrate", "test", "--to", "host-b")
    check(p.returncode == 1 and "QEMU" in p.stderr, f"the CLI shows the refusal ({p.stderr.strip()!r})")
    return r.json()["migration_id"]


def crash_and_resume(a, first_id):
    a.stop_agent()
    a.start_agent(env={"VGPUMIG_TEST_CRASH_AT": "job-checking"}, libvirt_uri="test:///default")
    r = post_migration(a, {"domain": "test", "to": "host-b", "timeout_ms": 60000})
    mid = r.json().get("migration_id")
    wait_for(lambda: a.agent.poll() is not None, 10)
    check(a.agent.poll() is not None, "the agent died right after recording phase checking")
    a.agent = None
    a.start_agent(libvirt_uri="test:///default")
    st = a.cli_json("status")
    mine = [m for m in st["migrations"] if m["migration_id"] == mid]
    check(len(mine) == 1 and mine[0].get("resumed") is True,
          f"after the restart the job is found in the store and resumed ({mine})")
    s = wait_done(a, mid)
    err = s.get("error") or {}
    check(s["state"] == "failed" and err.get("code") == "agent_restarted"
          and "checking" in err.get("message", ""),
          f"the resumed job ends failed, saying where it stopped ({err})")
    lim = s.get("limits") or {}
    check(lim.get("timeout_ms") == 60000 and lim.get("max_downtime_ms") is None
          and lim.get("bandwidth_bps") is None,
          f"the limits survive the restart as given, unset ones unset ({lim})")
    a.stop_agent()
    a.start_agent(libvirt_uri="test:///default")
    st = a.cli_json("status")
    recent = {m["migration_id"]: m for m in st["recent"]}
    check(mid in recent and recent[mid]["state"] == "failed" and first_id in recent,
          f"after another restart `vgpumig status` shows both jobs from the store ({sorted(recent)})")
    p = a.cli("status")
    check(mid in p.stdout and "agent restarted" in p.stdout,
          "the table shows the job and why it ended")


def cordon(a, b):
    p = b.cli("host", "cordon", "driver upgrade")
    check(p.returncode == 0 and "cordoned" in p.stdout and "driver upgrade" in p.stdout,
          f"`vgpumig host cordon` ({p.stdout.strip()!r} {p.stderr.strip()!r})")
    host = b.cli_json("host")
    check(host.get("cordoned") is True and host.get("cordon_reason") == "driver upgrade",
          "`vgpumig host` shows the cordon and its reason")
    body = claim_body("mig-cordon", "host-a", [device(str(uuid.uuid4()))])
    r = b.peer("POST", "/v1/claims", json.dumps(body), as_host=a)
    msg = r.json().get("message", "")
    check(r.status == 409 and r.json().get("code") == "host_cordoned" and "host-b" in msg
          and "uncordon" in msg, f"a claim over the peer API is refused naming the host ({msg!r})")
    dom, src = str(uuid.uuid4()), str(uuid.uuid4())
    xml = (f"<domain type='kvm'><name>vm-c</name><uuid>{dom}</uuid>"
           f"<metadata><vgpumig:vgpus xmlns:vgpumig='{METADATA_NS}'>"
           f"<vgpumig:vgpu id='{src}' kind='mdev' profile='NVIDIA A100-4C' type='nvidia-471' "
           f"framebuffer='{4096 * 1024 * 1024}'/></vgpumig:vgpus></metadata><devices>"
           f"<hostdev mode='subsystem' type='mdev' model='vfio-pci'><source>"
           f"<address uuid='{src}'/></source></hostdev></devices></domain>").encode()
    p = b.hook("vm-c", "migrate", "begin", xml)
    check(p.returncode == 1 and b"cordoned" in p.stderr and b"host-b" in p.stderr,
          f"the hook refuses the incoming migration ({p.stderr.strip()!r})")
    check(b.claims() == [], "nothing was claimed")
    b.stop_agent()
    b.start_agent()
    check(b.cli_json("host").get("cordoned") is True, "the cordon survives a restart")
    p = b.cli("host", "uncordon")
    check(p.returncode == 0 and "not cordoned" in p.stdout, f"uncordon ({p.stdout.strip()!r})")
    r = b.peer("POST", "/v1/claims", json.dumps(body), as_host=a)
    check(r.status in (200, 201) and r.json().get("state") == "held", f"claims are accepted again ({r.status})")
    p = b.cli("host", "drain")
    check(p.returncode == 2 and "cordon or uncordon" in p.stderr, "an unknown host action is a usage error")
    b.local("DELETE", f"/v1/claims/{r.json()['claim_id']}")


def libvirt_unreachable(a, b):
    b.stop_agent()
    b.start_agent(lease_seconds=2)
    body = claim_body("mig-lv", "host-a", [device(str(uuid.uuid4()))])
    r = b.peer("POST", "/v1/claims", json.dumps(body), as_host=a)
    claim = r.json()
    target = claim["mapping"][0]["target_id"]
    b.stop_agent()
    b.start_agent(lease_seconds=2, libvirt_uri=NOWHERE)
    time.sleep(3)
    gc = b.local("POST", "/v1/gc")
    check(gc.status == 200 and b"leases not expired" in gc.body and b"cannot be reached" in gc.body,
          f"gc expires nothing while libvirt is unreachable, and says why ({gc.body[:200]!r})")
    c = b.local("GET", f"/v1/claims/{claim['claim_id']}").json()
    check(c.get("state") == "held", f"the claim past its lease is not expired ({c.get('state')})")
    check(target in b.mdevs(), "its device is not removed")
    r = b.peer("POST", "/v1/claims",
               json.dumps(claim_body("mig-lv2", "host-a", [device(str(uuid.uuid4()))])), as_host=a)
    check(r.status in (200, 201) and r.json()["mapping"][0]["target_id"] != target,
          f"a new claim is served by a new device, never the held one ({r.body[:120]!r})")
    if r.status in (200, 201):
        b.local("DELETE", f"/v1/claims/{r.json()['claim_id']}")
    b.stop_agent()
    b.start_agent(lease_seconds=2)
    wait_for(lambda: b.local("GET", f"/v1/claims/{claim['claim_id']}").json().get("state") == "expired", 10)
    c = b.local("GET", f"/v1/claims/{claim['claim_id']}").json()
    check(c.get("state") == "expired", f"with the in-use view back, the lease runs out ({c.get('state')})")


def main():
    with Lab() as lab:
        lab.start()
        a, b = lab["host-a"], lab["host-b"]
        refusals(a)
        first = job_on_test_driver(a)
        crash_and_resume(a, first)
        cordon(a, b)
        libvirt_unreachable(a, b)
    finish()


if __name__ == "__main__":
    main()
