#!/usr/bin/env python3
"""make-trees.py: regenerate the hand-made fake sysfs trees used by the unit tests.

Each tree is a directory shaped like / on a host with NVIDIA vGPUs:
  m10/   mdev on physical GPUs (GRID M10-*), one vGPU created, sys/module/nvidia/version
  a100/  mdev on SR-IOV VFs of one A100, one vGPU created, /proc/driver/nvidia/version only
  h100/  NVIDIA VF interface (creatable_vgpu_types, current_vgpu_type), no mdev at all
Symlinks are relative, as in real sysfs, so a copy of a tree still resolves inside itself.
Empty directories are not created (git cannot store them).  Run from this directory:
  ./make-trees.py   (it removes and rewrites m10/, a100/, h100/)
"""
import os
import shutil

HERE = os.path.dirname(os.path.abspath(__file__))


def put(root, rel, text=""):
    p = os.path.join(root, rel)
    os.makedirs(os.path.dirname(p), exist_ok=True)
    with open(p, "w") as f:
        f.write(text)


def link(root, rel, target):
    """Symlink rel -> target (both relative to root), stored as a relative link."""
    p = os.path.join(root, rel)
    os.makedirs(os.path.dirname(p), exist_ok=True)
    os.symlink(os.path.relpath(target, os.path.dirname(rel)), p)


def mdev_type(root, devdir, tid, name, desc, avail):
    t = f"{devdir}/mdev_supported_types/{tid}"
    put(root, f"{t}/name", name + "\n")
    put(root, f"{t}/description", desc + "\n")
    put(root, f"{t}/device_api", "vfio-pci\n")
    put(root, f"{t}/available_instances", f"{avail}\n")
    put(root, f"{t}/create", "")


def mdev_instance(root, devdir, tid, uuid):
    put(root, f"{devdir}/{uuid}/remove", "")
    link(root, f"{devdir}/{uuid}/mdev_type", f"{devdir}/mdev_supported_types/{tid}")
    link(root, f"{devdir}/mdev_supported_types/{tid}/devices/{uuid}", f"{devdir}/{uuid}")
    link(root, f"sys/bus/mdev/devices/{uuid}", f"{devdir}/{uuid}")


def pci_dev(root, devdir, addr, mdev_parent, physfn=None):
    link(root, f"sys/bus/pci/devices/{addr}", devdir)
    if mdev_parent:
        link(root, f"sys/class/mdev_bus/{addr}", devdir)
    if physfn:
        link(root, f"{devdir}/physfn", os.path.join(os.path.dirname(devdir), physfn))


M10_TYPES = [  # id, name, framebuffer MiB, max instances per GPU
    ("nvidia-35", "GRID M10-0B", 512, 16),
    ("nvidia-36", "GRID M10-0Q", 512, 16),
    ("nvidia-37", "GRID M10-1Q", 1024, 8),
    ("nvidia-38", "GRID M10-2Q", 2048, 4),
    ("nvidia-160", "GRID M10-8Q", 8192, 1),
]


def desc(fb, maxi, heads=1, frl=60, res="4096x2160"):
    return f"num_heads={heads}, frl_config={frl}, framebuffer={fb}M, max_resolution={res}, max_instance={maxi}"


def make_m10(root):
    used = {"0000:3d:00.0": ("nvidia-38", "c2177883-f1bb-47f0-914d-32a22e3a8804")}
    for addr in ("0000:3d:00.0", "0000:3e:00.0"):
        devdir = f"sys/devices/pci0000:3a/{addr}"
        pci_dev(root, devdir, addr, True)
        busy = used.get(addr)
        for tid, name, fb, maxi in M10_TYPES:
            if busy:
                avail = maxi - 1 if tid == busy[0] else 0
            else:
                avail = maxi
            mdev_type(root, devdir, tid, name, desc(fb, maxi), avail)
        if busy:
            mdev_instance(root, devdir, busy[0], busy[1])
    # Entries the inventory must skip: a type dir with a bad name, a non-UUID device.
    put(root, "sys/devices/pci0000:3a/0000:3e:00.0/mdev_supported_types/bad name/name", "x\n")
    put(root, "sys/bus/mdev/devices/not-a-uuid/remove", "")
    put(root, "sys/module/nvidia/version", "535.183.04\n")


A100_TYPES = [
    ("nvidia-471", "NVIDIA A100-4C", 4096, 10),
    ("nvidia-472", "NVIDIA A100-5C", 5120, 8),
    ("nvidia-473", "NVIDIA A100-10C", 10240, 4),
]


def make_a100(root):
    pf = "0000:41:00.0"
    base = "sys/devices/pci0000:40/0000:40:01.1"
    pci_dev(root, f"{base}/{pf}", pf, False)
    for vf in ("0000:41:00.4", "0000:41:00.5", "0000:41:00.6"):
        devdir = f"{base}/{vf}"
        pci_dev(root, devdir, vf, True, physfn=pf)
        for tid, name, fb, maxi in A100_TYPES:
            if vf == "0000:41:00.4":
                avail = 0
            else:
                avail = 1 if tid == "nvidia-471" else 0
            mdev_type(root, devdir, tid, name, desc(fb, maxi, frl=60), avail)
    mdev_instance(root, f"{base}/0000:41:00.4", "nvidia-471", "5b3c1a2e-8f4d-4c6b-9a7e-1d2f3a4b5c6d")
    put(root, "proc/driver/nvidia/version",
        "NVRM version: NVIDIA UNIX x86_64 Kernel Module  550.90.05  Fri May 31 09:35:42 UTC 2024\n"
        "GCC version:  gcc version 12.2.0 (Debian 12.2.0-14)\n")
    put(root, f"proc/driver/nvidia/gpus/{pf}/information",
        "Model: \t\t NVIDIA A100-PCIE-40GB\nIRQ:   \t\t 156\nBus Type: \t PCIe\n"
        "ECC Mode: \t Enabled\nBus Location: \t 0000:41:00.0\n")


H100_TYPES = "ID    : vGPU Name\n1414 : NVIDIA H100-1-10C\n1415 : NVIDIA H100-2-20C\n1417 : NVIDIA H100-4C\n"


def make_h100(root):
    pf = "0000:ca:00.0"
    base = "sys/devices/pci0000:c9/0000:c9:01.0"
    pci_dev(root, f"{base}/{pf}", pf, False)
    put(root, f"{base}/{pf}/vendor", "0x10de\n")
    current = {"0000:ca:00.4": "1414", "0000:ca:00.5": "0", "0000:ca:00.6": "0"}
    for vf, cur in current.items():
        devdir = f"{base}/{vf}"
        pci_dev(root, devdir, vf, False, physfn=pf)
        types = H100_TYPES
        if vf == "0000:ca:00.6":  # lines the parser must skip
            types += "garbage without a colon\nabc : not an id\n 99 :\n"
        put(root, f"{devdir}/nvidia/creatable_vgpu_types", types)
        put(root, f"{devdir}/nvidia/current_vgpu_type", cur + "\n")
    put(root, "sys/module/nvidia/version", "550.90.05\n")
    put(root, "proc/driver/nvidia/version",
        "NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  550.90.05  Release Build\n")


def main():
    for name, fn in (("m10", make_m10), ("a100", make_a100), ("h100", make_h100)):
        root = os.path.join(HERE, name)
        shutil.rmtree(root, ignore_errors=True)
        os.makedirs(root)
        fn(root)


if __name__ == "__main__":
    main()
