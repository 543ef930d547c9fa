#!/usr/bin/env python3
"""NVML facts and checks on both paths, with the stand-in libnvidia-ml.so.1.

host-a (source) and host-b (target) run agents that dlopen the stand-in
(build/tools/libnvidia-ml.so.1 first on LD_LIBRARY_PATH); each host's
VGPUMIG_NVML_STUB file says its driver, ECC and NVIDIA's verdict, and points
at its emulator mount so the running vGPUs are the emulated ones.

- `vgpumig host --json`: nvml true, ECC from NVML, per-GPU metadata.
- `vgpumig check` (source path): ECC mismatch and NVIDIA's "no" are FAIL lines.
- `vgpumig migrate --dry-run` (host-c, whose agent reads its domain from
  libvirt's test:// driver): the check step refuses and names ecc_mismatch /
  nvml_incompatible among the failures (the test driver's QEMU 0.0.2 fails
  first, so the first sentence is about QEMU).
- the hook (`virsh migrate` path, no claim): a domain whose metadata records
  the source's driver, ECC and NVML blob is refused before any claim, with
  the SAME sentence `vgpumig check` prints; a matching one is claimed.
"""
import json
import os
import re
import subprocess
import sys
import time
import uuid

from agentlab import BUILD, DATA, METADATA_NS, Lab, check, finish, wait_for

TEMPLATE = open(os.path.join(DATA, "vgpu.xml.in")).read()
STUB = os.path.join(BUILD, "tools")


def write_state(h, **kv):
    lines = [f"catalog A100", f"gpus 2", f"sysfs {h.mount}"]
    lines += [f"{k} {v}" for k, v in kv.items()]
    with open(h.stub, "w") as f:
        f.write("\n".join(lines) + "\n")


def start(h, **kv):
    h.stub = os.path.join(h.dir, "nvml-state")
    write_state(h, driver="550.90.05", ecc="enabled", streaming="yes", **kv)
    h.start_agent(env={"LD_LIBRARY_PATH": STUB, "VGPUMIG_NVML_STUB": h.stub})


def restate(h, **kv):
    """New NVML state; the agent restarts so its cached facts (refreshed per
    housekeeping tick) show it at once."""
    write_state(h, **kv)
    h.stop_agent()
    h.start_agent(env={"LD_LIBRARY_PATH": STUB, "VGPUMIG_NVML_STUB": h.stub})


BLOB_READER = r"""
import ctypes, sys
lib = ctypes.CDLL(sys.argv[1])
assert lib.nvmlInit_v2() == 0
n = ctypes.c_uint(0)
lib.nvmlDeviceGetCount_v2(ctypes.byref(n))
dev = ctypes.c_void_p()
lib.nvmlDeviceGetHandleByIndex_v2(0, ctypes.byref(dev))
ids, cnt = (ctypes.c_uint * 64)(), ctypes.c_uint(64)
lib.nvmlDeviceGetActiveVgpus(dev, ctypes.byref(cnt), ids)
for i in range(cnt.value):
    u = ctypes.create_string_buffer(80)
    if lib.nvmlVgpuInstanceGetMdevUUID(ids[i], u, 80) == 0 and u.value.decode() == sys.argv[2]:
        size = ctypes.c_uint(0)
        lib.nvmlVgpuInstanceGetMetadata(ids[i], None, ctypes.byref(size))
        buf = ctypes.create_string_buffer(size.value)
        assert lib.nvmlVgpuInstanceGetMetadata(ids[i], buf, ctypes.byref(size)) == 0
        print(buf.raw[:size.value].hex())
lib.nvmlShutdown()
"""


def vgpu_blob(h, vgpu):
    """NVML's metadata of vGPU on host h, as host h's agent records it (hex),
    read through the same stand-in library in a child process (a sanitizer
    build of the stand-in needs its runtime preloaded there)."""
    so = os.path.join(STUB, "libnvidia-ml.so.1")
    env = dict(os.environ, VGPUMIG_NVML_STUB=h.stub, ASAN_OPTIONS="detect_leaks=0")
    asan = [l.split()[2] for l in subprocess.run(["ldd", so], capture_output=True, text=True)
            .stdout.splitlines() if "libasan" in l and "=>" in l]
    if asan:
        env["LD_PRELOAD"] = asan[0]
    p = subprocess.run([sys.executable, "-c", BLOB_READER, so, vgpu], capture_output=True,
                       text=True, env=env, timeout=60)
    return p.stdout.strip() or None


def domain(lab, name, vgpu, src=None, blob=None):
    attrs = "".join(f" {k}='{v}'" for k, v in (src or {}).items())
    nv = f" nvml='{blob}'" if blob else ""
    md = (f"    <vgpumig:vgpus xmlns:vgpumig=\"{METADATA_NS}\"{attrs}>\n"
          f"      <vgpumig:vgpu id='{vgpu}' kind='mdev' profile='NVIDIA A100-4C' type='nvidia-471' "
          f"framebuffer='{4 << 30}'{nv}/>\n    </vgpumig:vgpus>")
    hostdev = (f"    <hostdev mode='subsystem' type='mdev' managed='no' model='vfio-pci'>\n"
               f"      <source>\n        <address uuid='{vgpu}'/>\n      </source>\n    </hostdev>")
    xml = (TEMPLATE.replace("@NAME@", name).replace("@DOMUUID@", str(uuid.uuid4()))
           .replace("@META@", md).replace("@HOSTDEVS@", hostdev))
    path = os.path.join(lab.dir, f"{name}.xml")
    with open(path, "w") as f:
        f.write(xml)
    return path, xml.encode()


def checks(a, name, xml):
    p = a.cli("--json", "check", name, "--to", "host-b", "--xml", xml)
    if not p.stdout:  # the check did not run at all: say why in the log
        print(f"note: vgpumig check {name} gave no report: rc {p.returncode}: {p.stderr.strip()}")
    j = json.loads(p.stdout or "{}")
    return {c["name"]: c for c in j.get("checks", [])}


def hook_line(p):
    return p.stderr.decode(errors="replace").strip().removeprefix("vgpumig: ")


def start_with_libvirt_test(lab, h, vgpu):
    """An agent whose libvirt is the test:// driver with one running domain
    holding vgpu, so `vgpumig migrate` gets as far as its check step."""
    node = os.path.join(h.dir, "node.xml")
    with open(node, "w") as f:
        f.write(f"<node><domain type='test'><name>vm-mig</name><uuid>{uuid.uuid4()}</uuid>"
                f"<memory>1048576</memory><vcpu>1</vcpu><os><type arch='x86_64'>hvm</type></os>"
                f"<devices><hostdev mode='subsystem' type='mdev' model='vfio-pci'><source>"
                f"<address uuid='{vgpu}'/></source></hostdev></devices></domain></node>")
    h.stub = os.path.join(h.dir, "nvml-state")
    write_state(h, driver="550.90.05", ecc="enabled", streaming="yes")
    h.start_agent(env={"LD_LIBRARY_PATH": STUB, "VGPUMIG_NVML_STUB": h.stub},
                  libvirt_uri=f"test://{node}", lease_seconds=4)  # a 1 s housekeeping tick


def migrate_refusal(h):
    p = h.cli("migrate", "vm-mig", "--to", "host-b", "--dry-run")
    return p.returncode, p.stderr.strip()


with Lab(("host-a", "host-b", "host-c")) as lab:
    a, b, hc = lab["host-a"], lab["host-b"], lab["host-c"]
    a.start_emulator("A100", gpus=2)
    b.start_emulator("A100", gpus=2)
    hc.start_emulator("A100", gpus=1)
    S = str(uuid.uuid4())
    a.create_mdev("nvidia-471", S)
    SC = str(uuid.uuid4())
    hc.create_mdev("nvidia-471", SC)
    start(a)
    start(b)
    start_with_libvirt_test(lab, hc, SC)

    # --- the source records what a target needs, once (libvirt's test driver) ---
    def recorded():
        return [l for l in open(hc.log).read().splitlines() if "domain vm-mig: recorded" in l]
    wait_for(lambda: recorded(), 10)
    time.sleep(3)  # three more ticks: nothing changed, so nothing is written again
    rec = recorded()
    check(len(rec) == 1 and "driver 550.90.05, ECC enabled and NVML metadata of 1 vGPU(s)" in rec[0],
          f"the agent records driver, ECC and NVML blob in the running domain's metadata, once ({rec})")

    # --- facts ---
    j = a.cli_json("host")
    check(j.get("nvml") is True and j.get("ecc_mode") == "enabled" and j.get("device_streaming") is True,
          f"host facts come from NVML: ecc enabled, streaming ({j.get('nvml')}, {j.get('ecc_mode')})")
    check(len(j.get("pgpu_metadata") or []) == 2 and re.fullmatch(r"[0-9a-f]+", j["pgpu_metadata"][0]),
          "host facts carry one NVML metadata blob per GPU, as hex")
    check(any(t.get("name") == "NVIDIA A100-4C" and t.get("framebuffer_bytes") == 4 << 30
              for t in j.get("vgpu_types") or []), "vGPU types and framebuffer come from NVML")

    # --- check path: everything matches ---
    x, _ = domain(lab, "vm-ok", S)
    c = checks(a, "vm-ok", x)
    check(c.get("ecc", {}).get("status") == "ok" and "ECC is enabled on host-a and host-b" in c["ecc"]["message"],
          f"same ECC: ecc ok ({c.get('ecc')})")
    check(c.get("nvml", {}).get("status") == "ok", f"NVIDIA's verdict is live: nvml ok ({c.get('nvml')})")
    check(c.get("streaming", {}).get("status") == "ok", "both stream vGPU state: streaming ok")

    # --- check path: ECC off on host-b ---
    restate(b, driver="550.90.05", ecc="disabled", streaming="yes")
    p = a.cli("check", "vm-ok", "--to", "host-b", "--xml", x)
    ecc_line = [l for l in p.stdout.splitlines() if l.startswith("FAIL ecc")]
    check(p.returncode == 1 and ecc_line and "host-a has ECC enabled and host-b has ECC disabled" in ecc_line[0],
          f"ECC mismatch: a FAIL ecc line naming both ({ecc_line})")
    c = checks(a, "vm-ok", x)
    check(c.get("nvml", {}).get("code") == "nvml_incompatible",
          f"the stand-in's NVML also says no for an ECC change ({c.get('nvml', {}).get('message')})")
    check_ecc_msg = c.get("ecc", {}).get("message")
    rc, err = migrate_refusal(hc)
    check(rc == 1 and "ecc_mismatch" in err and "checks failed" in err,
          f"migrate's check step refuses and names the ECC mismatch ({err!r})")

    # --- hook path: the same ECC mismatch recorded in the metadata, no claim ---
    _, xml_ecc = domain(lab, "vm-hook-ecc", str(uuid.uuid4()),
                        {"host": "host-a", "driver": "550.90.05", "ecc": "enabled"})
    before = b.mdevs()
    p = b.hook("vm-hook-ecc", "migrate", "begin", xml_ecc)
    check(p.returncode == 1 and p.stdout == b"", f"hook: ECC mismatch refused, exit 1 ({p.stderr!r})")
    check(hook_line(p) == check_ecc_msg,
          f"hook: the refusal is the very sentence `vgpumig check` prints ({hook_line(p)!r} vs {check_ecc_msg!r})")
    check(b.mdevs() == before and not b.claims(), "hook: nothing claimed or created on a refusal")

    # --- NVIDIA says no (GPU hardware): both paths, same words ---
    restate(b, driver="550.90.05", ecc="enabled", streaming="yes", compat="none gpu")
    c = checks(a, "vm-ok", x)
    nv_msg = c.get("nvml", {}).get("message", "")
    check(c.get("nvml", {}).get("code") == "nvml_incompatible" and "limited by the GPU hardware" in nv_msg
          and S in nv_msg, f"check: NVIDIA's verdict names the vGPU and the limit ({nv_msg!r})")
    check(c.get("ecc", {}).get("status") == "ok", "ECC matches again: only NVIDIA's verdict fails")
    rc, err = migrate_refusal(hc)
    check(rc == 1 and "nvml_incompatible" in err and "ecc_mismatch" not in err,
          f"migrate's check step refuses on NVIDIA's verdict ({err!r})")
    blob = vgpu_blob(a, S)
    check(blob and re.fullmatch(r"[0-9a-f]+", blob), "the source's NVML gives the vGPU's metadata blob")
    _, xml_nv = domain(lab, "vm-hook-nvml", S,
                       {"host": "host-a", "driver": "550.90.05", "ecc": "enabled"}, blob)
    p = b.hook("vm-hook-nvml", "migrate", "begin", xml_nv)
    check(p.returncode == 1 and hook_line(p) == nv_msg,
          f"hook: NVIDIA's no, in the words of `vgpumig check` ({hook_line(p)!r})")

    # --- driver mismatch recorded by the source: same words as the check ---
    restate(b, driver="550.90.05", ecc="enabled", streaming="yes")
    restate(a, driver="535.104.06", ecc="enabled", streaming="yes")
    c = checks(a, "vm-ok", x)
    drv_msg = c.get("driver", {}).get("message", "")
    check(c.get("driver", {}).get("code") == "driver_mismatch", f"check: driver mismatch ({drv_msg!r})")
    _, xml_drv = domain(lab, "vm-hook-drv", str(uuid.uuid4()),
                        {"host": "host-a", "driver": "535.104.06", "ecc": "enabled"})
    p = b.hook("vm-hook-drv", "migrate", "begin", xml_drv)
    check(p.returncode == 1 and hook_line(p) == drv_msg,
          f"hook: driver mismatch in the words of `vgpumig check` ({hook_line(p)!r})")

    # --- everything matches: the hook claims ---
    restate(a, driver="550.90.05", ecc="enabled", streaming="yes")
    blob = vgpu_blob(a, S)
    _, xml_ok = domain(lab, "vm-hook-ok", S, {"host": "host-a", "driver": "550.90.05", "ecc": "enabled"}, blob)
    p = b.hook("vm-hook-ok", "migrate", "begin", xml_ok)
    check(p.returncode == 0 and b"<domain" in p.stdout, f"hook: a matching domain is accepted ({p.stderr!r})")
    check(len(b.claims()) == 1, "hook: and claimed")
    rc, err = migrate_refusal(hc)
    check(rc == 1 and "ecc_mismatch" not in err and "nvml_incompatible" not in err,
          f"matching NVML facts: migrate's check step names neither ({err!r})")

    # --- times for people in text, raw numbers in --json ---
    p = b.cli("claims")
    row = [l for l in p.stdout.splitlines() if " held " in l]
    check(row and re.search(r"  in \d+ (min|s)  ", row[0]), f"`vgpumig claims`: EXPIRES reads 'in N min' ({row})")
    check(isinstance(b.claims()[0].get("expires_at"), int), "`vgpumig claims --json`: expires_at stays unix seconds")
    p = b.cli("host")
    check(re.search(r"^gathered_at: \d+ \((\d+ s ago|in 0 s)\)$", p.stdout, re.M),
          f"`vgpumig host`: gathered_at with a human reading ({[l for l in p.stdout.splitlines() if 'gathered' in l]})")
    check(isinstance(b.cli_json("host").get("gathered_at"), int), "`vgpumig host --json`: gathered_at is a number")

    # --- a vIOMMU shows in the XML alone: refused on the hook path too ---
    _, xml_iommu = domain(lab, "vm-hook-iommu", str(uuid.uuid4()))
    xml_iommu = xml_iommu.replace(b"<video>", b"<iommu model='intel'/>\n    <video>")
    p = b.hook("vm-hook-iommu", "migrate", "begin", xml_iommu)
    check(p.returncode == 1 and b"vIOMMU" in p.stderr, f"hook: a vIOMMU is refused ({p.stderr!r})")

finish()
