#!/usr/bin/env python3
"""vgpumig-hook fed domain XMLs on stdin the way libvirt runs it.

`DOMAIN migrate begin -` on the target (host-b) with: a claim made by the
source beforehand (output carries the target's ids), no claim but vgpumig
metadata (the agent claims now), no vGPU at all (byte-identical output, even
with the agent down), a vGPU the agent cannot serve (exit 1, its message), the
agent down or hung (exit 1, one clear line), a 50 MB body (refused).  Other
operations print nothing and never fail; `started begin` commits the claim and
`stopped end` releases it (devices the claim created are removed).  The domain XMLs under
tests/data/domxml (the XML layer's test set) go through it too.
"""
import glob
import os
import signal
import subprocess
import time
import uuid
import xml.etree.ElementTree as ET

from agentlab import CLI, DATA, HOOK, METADATA_NS, SRC, Lab, check, claim_body, device, finish, owners

TEMPLATE = open(os.path.join(DATA, "vgpu.xml.in")).read()
NOVGPU = open(os.path.join(DATA, "novgpu.xml"), "rb").read()
PROFILES = {"4C": ("NVIDIA A100-4C", "nvidia-471", 4096), "8C": ("NVIDIA A100-8C", "nvidia-473", 8192),
            "40C": ("NVIDIA A100-40C", "nvidia-476", 40960)}


def domain_xml(name, dom_uuid, vgpus, meta=True):
    """vgpus: [(uuid, "4C"), ...] as mdev hostdevs, recorded in the metadata when meta."""
    hostdevs, entries = [], []
    for i, (u, p) in enumerate(vgpus):
        prof, type_id, fb = PROFILES[p]
        hostdevs.append(
            f"    <hostdev mode='subsystem' type='mdev' managed='no' model='vfio-pci' display='off'>\n"
            f"      <source>\n        <address uuid='{u}'/>\n      </source>\n"
            f"      <alias name='hostdev{i}'/>\n"
            f"      <address type='pci' domain='0x0000' bus='0x0{6 + i}' slot='0x00' function='0x0'/>\n"
            f"    </hostdev>")
        entries.append(f"      <vgpumig:vgpu id='{u}' kind='mdev' profile='{prof}' type='{type_id}' "
                       f"framebuffer='{fb * 1024 * 1024}'/>")
    md = ""
    if meta and entries:
        md = (f"    <vgpumig:vgpus xmlns:vgpumig=\"{METADATA_NS}\">\n" + "\n".join(entries)
              + "\n    </vgpumig:vgpus>")
    return (TEMPLATE.replace("@NAME@", name).replace("@DOMUUID@", dom_uuid)
            .replace("@META@", md).replace("@HOSTDEVS@", "\n".join(hostdevs))).encode()


def hostdev_uuids(xml_bytes):
    root = ET.fromstring(xml_bytes)
    return [a.get("uuid") for a in root.findall("./devices/hostdev[@type='mdev']/source/address")]


def one_line(stderr):
    s = stderr.decode(errors="replace")
    return (s.endswith("\n") and s.count("\n") == 1 and s.startswith("vgpumig: ")
            and not s.startswith("vgpumig: vgpumig:"))


def has_vgpu_parts(xml_bytes):
    try:
        root = ET.fromstring(xml_bytes)
    except ET.ParseError:
        return None
    meta = root.find("metadata")
    has_meta = meta is not None and meta.find(f"{{{METADATA_NS}}}vgpus") is not None
    return bool(root.findall("./devices/hostdev")) or has_meta


with Lab() as lab:
    a, b = lab["host-a"], lab["host-b"]
    S1 = str(uuid.uuid4())          # source vGPU whose UUID is taken on B
    a.start_emulator("A100", gpus=1)
    b.start_emulator("A100", gpus=2)
    a.create_mdev("nvidia-471", S1)
    b.create_mdev("nvidia-473", S1)  # same UUID, another profile: B must map S1 elsewhere
    a.start_agent()
    b.start_agent()

    # --- no vGPU: byte-identical, from the hook and from the agent itself ---
    p = b.hook("plain-vm", "migrate", "begin", NOVGPU)
    check(p.returncode == 0 and p.stdout == NOVGPU, "no vGPU: output is byte-identical to the input")
    r = b.local("POST", "/v1/hook/migrate-begin", NOVGPU, ctype="application/xml")
    check(r.status == 200 and r.body == NOVGPU, f"no vGPU: the agent also hands the XML back unchanged ({r.status})")

    # --- with a claim made by the source beforehand ---
    D1 = str(uuid.uuid4())
    r = b.peer("POST", "/v1/claims", claim_body("hook-1", "host-a", [device(S1)], domain_uuid=D1,
                                                domain_name="gpu-vm-1"), as_host=a)
    check(r.status == 201, f"source claims on B for gpu-vm-1 (got {r})")
    t1 = (((r.json() or {}).get("mapping") or [{}])[0]).get("target_id")
    check(t1 and t1 != S1, f"S1's UUID is taken on B, so B maps it to another device ({t1})")
    xml1 = domain_xml("gpu-vm-1", D1, [(S1, "4C")])
    n_claims = len(b.claims())
    p = b.hook("gpu-vm-1", "migrate", "begin", xml1)
    check(p.returncode == 0, f"with a claim: exit 0 (stderr {p.stderr!r})")
    out_ids = hostdev_uuids(p.stdout) if p.returncode == 0 else []
    check(out_ids == [t1], f"with a claim: the hostdev names the target's device ({out_ids})")
    want = subprocess.run([CLI, "xml", "rewrite", "--map", f"{S1}={t1}", "-"], input=xml1,
                          capture_output=True)
    check(want.returncode == 0 and p.stdout == want.stdout,
          "with a claim: output is what `vgpumig xml rewrite` makes (nothing else changed)")
    check(len(b.claims()) == n_claims, "with a claim: the hook made no second claim")

    # --- no claim, but the profiles in the metadata: the agent claims now ---
    D2, S2, S3 = str(uuid.uuid4()), str(uuid.uuid4()), str(uuid.uuid4())
    xml2 = domain_xml("gpu-vm-2", D2, [(S2, "4C"), (S3, "4C")])
    p = b.hook("gpu-vm-2", "migrate", "begin", xml2)
    check(p.returncode == 0, f"metadata only: exit 0 (stderr {p.stderr!r})")
    mine = [c for c in b.claims() if c.get("domain_uuid") == D2 and c.get("state") != "released"]
    check(len(mine) == 1, f"metadata only: one claim now exists for the domain ({len(mine)})")
    mapping = {m["source_id"]: m["target_id"] for m in (mine[0].get("mapping") or [])} if mine else {}
    got = hostdev_uuids(p.stdout) if p.returncode == 0 else []
    check(got == [mapping.get(S2), mapping.get(S3)] and None not in got,
          f"metadata only: the output names the claimed devices ({got})")
    check(all(t in b.mdevs() for t in got if t), "metadata only: those devices exist on B")
    p2 = b.hook("gpu-vm-2", "migrate", "begin", xml2)
    check(p2.returncode == 0 and p2.stdout == p.stdout, "metadata only: a second call reuses the claim")
    check(len([c for c in b.claims() if c.get("domain_uuid") == D2 and c.get("state") != "released"]) == 1,
          "metadata only: still one claim for the domain")

    # --- vGPU hostdev, no claim, no metadata: refused with the agent's reason ---
    D4 = str(uuid.uuid4())
    p = b.hook("gpu-vm-4", "migrate", "begin", domain_xml("gpu-vm-4", D4, [(str(uuid.uuid4()), "4C")], meta=False))
    check(p.returncode == 1 and p.stdout == b"" and one_line(p.stderr),
          f"no claim, no metadata: exit 1 with one line ({p.stderr!r})")

    # --- a profile B cannot serve: refused, the agent's message on stderr ---
    D5 = str(uuid.uuid4())
    before = b.mdevs()
    p = b.hook("gpu-vm-5", "migrate", "begin", domain_xml("gpu-vm-5", D5, [(str(uuid.uuid4()), "40C")]))
    check(p.returncode == 1 and one_line(p.stderr) and b"A100-40C" in p.stderr,
          f"no capacity: exit 1, one line naming the profile ({p.stderr!r})")
    check(b.mdevs() == before, "no capacity: nothing created on B")

    # --- options from the hook's config file instead of the environment ---
    conf = os.path.join(lab.dir, "hook.conf")
    with open(conf, "w") as f:
        f.write(f"# test\nsocket = {b.socket}\ntimeout_ms = 5000\nunknown_key = 1\n")
    p = b.hook("gpu-vm-1", "migrate", "begin", xml1, env={"VGPUMIG_SOCKET": "", "VGPUMIG_HOOK_CONFIG": conf})
    check(p.returncode == 0 and hostdev_uuids(p.stdout) == [t1], "socket taken from VGPUMIG_HOOK_CONFIG's file")
    p = b.hook("gpu-vm-1", "migrate", "begin", xml1,
               env={"VGPUMIG_SOCKET": "/nonexistent.sock", "VGPUMIG_HOOK_CONFIG": conf})
    check(p.returncode == 1 and b"/nonexistent.sock" in p.stderr, "the environment wins over the file")

    # --- scripts/install-hook puts it where libvirt looks ---
    qd = os.path.join(lab.dir, "hooks/qemu.d")
    ip = subprocess.run([os.path.join(SRC, "scripts/install-hook"), "--hook", HOOK, qd], capture_output=True)
    inst = os.path.join(qd, "vgpumig-hook")
    check(ip.returncode == 0 and os.access(inst, os.X_OK) and open(inst, "rb").read() == open(HOOK, "rb").read(),
          f"install-hook installs an executable copy ({ip.stderr!r})")
    ip = subprocess.run([os.path.join(SRC, "scripts/install-hook"), "--hook", HOOK, qd], capture_output=True)
    check(ip.returncode == 0 and os.listdir(qd) == ["vgpumig-hook"], "installing again replaces it, nothing else left")

    # --- other operations: nothing printed, never a failure ---
    def events_seen():
        m = b.local("GET", "/metrics").body.decode()
        return sum(int(float(l.rsplit(" ", 1)[1])) for l in m.splitlines()
                   if l.startswith("vgpumig_http_requests_total{") and 'route="/v1/hook/event"' in l)
    ev0 = events_seen()
    for op, sub in (("prepare", "begin"), ("start", "begin"), ("started", "begin"),
                    ("release", "end"), ("stopped", "end"), ("reconnect", "begin"), ("attach", "begin")):
        p = b.hook("gpu-vm-1", op, sub, xml1)
        check(p.returncode == 0 and p.stdout == b"", f"`{op} {sub}`: exit 0, no output")
    check(events_seen() - ev0 == 3, f"release end, stopped end and started begin reached the agent "
                                     f"({events_seen() - ev0} events)")

    # --- the events drive the claim: started begin commits, stopped end releases ---
    def claim_of(dom):
        live = [c for c in b.claims() if c.get("domain_uuid") == dom]
        return live[0] if live else {}

    def gone_if_created(mapping):
        """Devices the claim created are removed, reused ones stay; none is owned."""
        mdevs, own = b.mdevs(), owners(b)
        return bool(mapping) and all((m["target_id"] not in mdevs) == bool(m.get("created"))
                                     and m["target_id"] not in own for m in mapping)

    # two 8C vGPUs: B has one free 8C instance (S1) and must create the other
    D7 = str(uuid.uuid4())
    xml7 = domain_xml("gpu-vm-7", D7, [(str(uuid.uuid4()), "8C"), (str(uuid.uuid4()), "8C")])
    p = b.hook("gpu-vm-7", "migrate", "begin", xml7)
    c7 = claim_of(D7)
    m7 = c7.get("mapping", [])
    check(p.returncode == 0 and c7.get("state") == "held" and len(m7) == 2
          and all(m["target_id"] in b.mdevs() for m in m7),
          f"incoming gpu-vm-7: the hook's claim is held ({c7.get('state')})")
    check(sorted(bool(m.get("created")) for m in m7) == [False, True],
          "one vGPU reuses the free instance, the other is created")
    b.hook("gpu-vm-7", "prepare", "begin", p.stdout)
    b.hook("gpu-vm-7", "started", "begin", p.stdout)
    check(claim_of(D7).get("state") == "committed", f"`started begin` commits it ({claim_of(D7).get('state')})")
    b.hook("gpu-vm-7", "stopped", "end", p.stdout)
    b.hook("gpu-vm-7", "release", "end", p.stdout)
    check(gone_if_created(m7), "the domain stopped (no libvirt to ask): its devices are freed, the created one removed")

    D8 = str(uuid.uuid4())
    xml8 = domain_xml("gpu-vm-8", D8, [(str(uuid.uuid4()), "8C"), (str(uuid.uuid4()), "8C")])
    p = b.hook("gpu-vm-8", "migrate", "begin", xml8)
    m8 = claim_of(D8).get("mapping", [])
    check(p.returncode == 0 and claim_of(D8).get("state") == "held", "incoming gpu-vm-8: claim held")
    b.hook("gpu-vm-8", "stopped", "end", p.stdout)
    check(claim_of(D8).get("state") in (None, "released") and gone_if_created(m8),
          "the incoming migration failed (`stopped end` before `started`): claim released, created device removed")

    # --- oversized body: refused before anything is asked ---
    big = b"<domain>" + b" " * (50 * 1024 * 1024) + b"</domain>"
    p = b.hook("huge", "migrate", "begin", big)
    check(p.returncode == 1 and one_line(p.stderr) and b"16 MiB" in p.stderr,
          f"50 MB body: exit 1 with one line ({p.stderr[:200]!r})")

    # --- hung agent: the hook gives up within its timeout ---
    b.agent.send_signal(signal.SIGSTOP)
    try:
        p = b.hook("gpu-vm-1", "migrate", "begin", xml1,
                   env={"VGPUMIG_HOOK_TIMEOUT_MS": "500", "VGPUMIG_HOOK_CONNECT_TIMEOUT_MS": "300"})
        check(p.returncode == 1 and one_line(p.stderr) and b"did not answer in time" in p.stderr,
              f"hung agent: exit 1 with a timeout message ({p.stderr!r})")
        p = b.hook("gpu-vm-1", "release", "end", xml1, timeout=20)
        check(p.returncode == 0 and p.stdout == b"", "hung agent: `release end` still exits 0")
    finally:
        b.agent.send_signal(signal.SIGCONT)

    # --- agent down ---
    b.stop_agent()
    p = b.hook("gpu-vm-1", "migrate", "begin", xml1)
    msg = p.stderr.decode(errors="replace")
    check(p.returncode == 1 and one_line(p.stderr)
          and msg.startswith(f"vgpumig: cannot reach the vgpumig agent at {b.socket} (")
          and "is vgpumigd running?" in msg, f"agent down: exit 1 with a clear line ({msg!r})")
    check(p.stdout == b"", "agent down: nothing on stdout")
    p = b.hook("plain-vm", "migrate", "begin", NOVGPU)
    check(p.returncode == 0 and p.stdout == NOVGPU, "agent down: a domain without vGPU still passes unchanged")
    p = b.hook("gpu-vm-1", "stopped", "end", xml1)
    check(p.returncode == 0 and p.stdout == b"", "agent down: `stopped end` exits 0")
    b.start_agent()

    # --- the XML layer's domain set ---
    files = sorted(glob.glob(os.path.join(SRC, "tests/data/domxml/**/*.xml"), recursive=True))
    for f in files:
        data = open(f, "rb").read()
        kind = has_vgpu_parts(data)
        p = b.hook(os.path.basename(f), "migrate", "begin", data)
        name = os.path.relpath(f, SRC)
        if kind is False:
            check(p.returncode == 0 and p.stdout == data, f"{name}: no vGPU, passed through byte-identical")
        else:
            check(p.returncode == 0 or (p.returncode == 1 and one_line(p.stderr)),
                  f"{name}: exit 0, or 1 with one line on stderr (rc {p.returncode}, {p.stderr[:160]!r})")
    print(f"({len(files)} domain XMLs from tests/data/domxml)")

finish()
