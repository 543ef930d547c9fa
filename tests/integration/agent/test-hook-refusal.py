#!/usr/bin/env python3
"""The hook decides the same with the agent up or down (issue 9, item 5).

Reproduced before the fix: a VF (PCI) vGPU with no vgpumig metadata passed
the hook unchanged while the agent was up, but was refused while it was
down; and with the agent down any PCI passthrough was refused.

Now, for each kind of device, the answer is the same on both paths: a vGPU
(mdev, or a PCI hostdev that is an NVIDIA device on this host) that no claim
or metadata covers is refused with a message naming it; a domain without
vGPUs (none, or a non-NVIDIA PCI device) passes byte-identical.
"""
import os
import uuid

from agentlab import Lab, check, finish

DOMAIN = """<domain type='kvm'>
  <name>@NAME@</name>
  <uuid>@UUID@</uuid>
  <memory unit='KiB'>1048576</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='q35'>hvm</type></os>
  <devices>
@DEVS@
  </devices>
</domain>
"""


def domain(name, devs):
    return DOMAIN.replace("@NAME@", name).replace("@UUID@", str(uuid.uuid4())).replace("@DEVS@", devs).encode()


def pci_hostdev(addr):
    dom, bus, rest = addr.split(":")
    slot, fn = rest.split(".")
    return (f"    <hostdev mode='subsystem' type='pci' managed='no'>\n"
            f"      <source><address domain='0x{dom}' bus='0x{bus}' slot='0x{slot}' function='0x{fn}'/></source>\n"
            f"    </hostdev>")


def mdev_hostdev(u):
    return (f"    <hostdev mode='subsystem' type='mdev' model='vfio-pci'>\n"
            f"      <source><address uuid='{u}'/></source>\n"
            f"    </hostdev>")


with Lab() as lab:
    b = lab["host-b"]
    b.start_emulator("H100", gpus=1)
    pci = os.path.join(b.mount, "sys/bus/pci/devices")
    vfs = sorted(d for d in os.listdir(pci) if os.path.isdir(os.path.join(pci, d, "nvidia")))
    check(len(vfs) > 0, f"the emulator shows NVIDIA VFs ({vfs[:2]})")
    vf = vfs[0] if vfs else "0000:41:00.4"
    env = {"VGPUMIG_SYSFS_ROOT": b.mount}

    cases = [
        ("vf-no-meta", pci_hostdev(vf), False, vf),
        ("mdev-no-meta", mdev_hostdev(str(uuid.uuid4())), False, "mdev"),
        ("nic", pci_hostdev("0000:99:00.0"), True, None),
        ("plain", "", True, None),
    ]
    xmls = {name: domain(name, devs) for name, devs, _, _ in cases}

    def run(state):
        out = {}
        for name, _, passes, word in cases:
            p = b.hook(name, "migrate", "begin", stdin=xmls[name], env=env)
            out[name] = (p.returncode, p.stdout, p.stderr.decode().strip())
            if passes:
                check(p.returncode == 0 and p.stdout == xmls[name],
                      f"agent {state}: {name} passes byte-identical ({out[name][2]!r})")
            else:
                msg = out[name][2]
                check(p.returncode == 1 and p.stdout == b"" and msg.startswith("vgpumig: ") and "\n" not in msg
                      and name in msg and (word in msg),
                      f"agent {state}: {name} is refused with one line naming it ({msg!r})")
        return out

    b.start_agent()
    up = run("up")
    b.stop_agent()
    down = run("down")
    for name, _, _, _ in cases:
        check(up[name][0] == down[name][0], f"{name}: same decision with the agent up and down "
              f"(exit {up[name][0]} / {down[name][0]})")
    check("only the agent can give it a vGPU here" in down["vf-no-meta"][2],
          "agent down: the refusal says why the agent is needed")

finish()
