#!/usr/bin/env python3
"""`vgpumig check DOMAIN --to HOST`, `vgpumig host` and `vgpumig gc` against
three agents: host-a (source), host-b (same driver), host-c (another driver).

The agents run with libvirt_uri=none, so the domain comes with --xml and the
libvirt/QEMU versions are unknown: those checks must fail on both ends with a
clear line, while the vGPU checks (profile, driver, vIOMMU, post-copy) show
what they find.  Every check prints one line "ok   name  message" or
"FAIL name  message", and the exit code is 1 exactly when one fails.
"""
import json
import re
import uuid

from agentlab import Lab, check, domain_file, finish

LINE = re.compile(r"^(ok  |FAIL|\?\?  ) (\S+)\s+(\S.*)$")


def run_check(a, name, to, xml, *extra):
    p = a.cli("check", name, "--to", to, "--xml", xml, *extra)
    lines = [l for l in p.stdout.splitlines() if l.strip()]
    parsed = [LINE.match(l) for l in lines]
    return p, lines, parsed


def by_name(j):
    out = {}
    for c in j.get("checks", []):
        out.setdefault(c.get("name"), []).append(c)
    return out


with Lab(("host-a", "host-b", "host-c")) as lab:
    a, b, c = lab["host-a"], lab["host-b"], lab["host-c"]
    a.start_emulator("A100", gpus=2)
    b.start_emulator("A100", gpus=2)
    c.start_emulator("A100", gpus=2, driver="535.104.06")
    S = str(uuid.uuid4())
    a.create_mdev("nvidia-471", S)
    for h in (a, b, c):
        h.start_agent()

    # --- host, gc ---
    p = a.cli("host")
    check(p.returncode == 0 and re.search(r"^host_name: host-a$", p.stdout, re.M),
          f"`vgpumig host` prints 'host_name: host-a' ({p.stdout[:120]!r})")
    j = a.cli_json("host")
    check(j.get("host_name") == "host-a" and j.get("driver_version") == "550.90.05",
          "`vgpumig host --json` has host_name and the emulated driver version")
    p = a.cli("gc")
    check(p.returncode == 0 and p.stdout.strip() and p.stderr == "", "`vgpumig gc` prints its report")
    check(isinstance(a.cli_json("gc"), dict), "`vgpumig gc --json` is an object")

    # --- GET /v1/types on the peer API ---
    r = b.peer("GET", "/v1/types", as_host=a)
    prof = {(x["name"], x["framebuffer_bytes"]): x["available"] for x in (r.json() or {}).get("profiles", [])}
    check(r.status == 200 and prof.get(("NVIDIA A100-4C", 4 << 30), 0) >= 10,
          f"peer GET /v1/types lists what B can give ({len(prof)} profiles)")

    # --- a compatible vGPU: every line well formed, vGPU checks pass ---
    x1 = domain_file(lab, "vm-ok", S)
    p, lines, parsed = run_check(a, "vm-ok", "host-b", x1)
    check(lines and all(parsed), f"every check is one line 'ok|FAIL name message' ({lines[:3]})")
    failed = [m.group(2) for m in parsed if m and m.group(1) == "FAIL"]
    check(p.returncode == (1 if failed else 0), f"exit {p.returncode} matches failures {failed}")
    j = json.loads(a.cli("--json", "check", "vm-ok", "--to", "host-b", "--xml", x1).stdout or "{}")
    checks = by_name(j)
    hosts = {c.get("host") for c in j.get("checks", [])}
    check({"host-a", "host-b"} <= hosts, f"checks cover both ends ({sorted(h for h in hosts if h)})")
    check(all(set(x) >= {"name", "ok", "code", "message"} for x in j.get("checks", [])),
          "each JSON check has name, ok, code and message")
    check(all(x["ok"] for x in checks.get("driver", [])) and checks.get("driver"),
          "same driver version on both: driver check passes")
    prof_checks = [x for x in j.get("checks", []) if x.get("code") in ("profile_unavailable", "framebuffer_mismatch")]
    check(not prof_checks, f"A100-4C is available on host-b: no profile failure ({prof_checks})")
    vers = [x for x in j.get("checks", []) if x.get("code") == "version_unknown"]
    check(vers and all("host-" in x["message"] for x in vers),
          "libvirt_uri=none: versions unknown, reported as failures naming the host")
    check(j.get("ok") is False and p.returncode == 1, "so the whole check fails, exit 1")
    # no NVML on these hosts: ECC and NVIDIA's verdict are unknown, never "ok"
    for name, code in (("ecc", "ecc_unknown"), ("nvml", "nvml_unknown"), ("streaming", "streaming_unknown")):
        x = (checks.get(name) or [{}])[0]
        check(x.get("status") == "unknown" and x.get("ok") is False and x.get("code") == code
              and "unknown" in x.get("message", ""),
              f"no NVML: {name} is reported unknown, not ok ({x.get('message')!r})")
    unk = [l for l in lines if l.startswith("?? ")]
    check(len(unk) == 3 and any(l.split()[1] == "ecc" for l in unk),
          f"no NVML: the text output marks unknown checks with '??' ({unk})")

    # --- another driver on the target ---
    p, lines, parsed = run_check(a, "vm-ok", "host-c", x1)
    drv = [l for l in lines if l.startswith("FAIL") and "535.104.06" in l]
    check(p.returncode == 1 and drv, f"driver mismatch is a FAIL line naming the target's version ({drv})")

    # --- a profile host-b cannot give ---
    x2 = domain_file(lab, "vm-big", str(uuid.uuid4()), "NVIDIA A100-40C", "nvidia-476", 40960)
    j = json.loads(a.cli("--json", "check", "vm-big", "--to", "host-b", "--xml", x2).stdout or "{}")
    codes = {x.get("code") for x in j.get("checks", []) if not x.get("ok")}
    check("profile_unavailable" not in codes, "A100-40C fits an empty GPU on host-b: no profile failure")
    x3 = domain_file(lab, "vm-odd", str(uuid.uuid4()), "NVIDIA A100-3C", "nvidia-999", 3072)
    p, lines, parsed = run_check(a, "vm-odd", "host-b", x3)
    odd = [l for l in lines if l.startswith("FAIL") and "A100-3C" in l]
    check(p.returncode == 1 and odd and "host-b" in odd[0], f"a profile host-b lacks: FAIL line naming it ({odd})")

    # --- vIOMMU, post-copy ---
    x4 = domain_file(lab, "vm-iommu", S, viommu=True)
    j = json.loads(a.cli("--json", "check", "vm-iommu", "--to", "host-b", "--xml", x4).stdout or "{}")
    check(any(x.get("code") == "viommu_present" and not x["ok"] for x in j.get("checks", [])),
          "a vIOMMU in the domain fails the check")
    r = a.local("POST", "/v1/check", {"domain": "vm-ok", "to": "host-b", "postcopy": True,
                                      "domain_xml": open(x1).read()})
    pc = [x for x in (r.json() or {}).get("checks", []) if x.get("code") == "postcopy_forbidden"]
    check(r.status == 200 and pc and not pc[0]["ok"], "post-copy asked: postcopy_forbidden fails")

    # --- a vGPU whose profile nobody knows ---
    x5 = domain_file(lab, "vm-nometa", str(uuid.uuid4()), meta=False)
    p, lines, parsed = run_check(a, "vm-nometa", "host-b", x5)
    check(p.returncode == 1 and any(l.startswith("FAIL profile") for l in lines),
          "a vGPU not on host-a and without metadata: FAIL profile line")

    # --- failures to run the check at all ---
    p = a.cli("check", "vm-ok", "--to", "host-z", "--xml", x1)
    check(p.returncode == 1 and "no peer 'host-z'" in p.stderr and p.stdout == "",
          f"unknown peer: exit 1, one clear line ({p.stderr.strip()!r})")
    p = a.cli("check", "vm-ok", "--to", "host-b")
    check(p.returncode == 1 and "domain_xml" in p.stderr, f"no XML and no libvirt: clear refusal ({p.stderr.strip()!r})")
    p = a.cli("check", "vm-ok")
    check(p.returncode == 2 and "--to" in p.stderr, "missing --to: usage, exit 2")
    c.stop_agent()
    p = a.cli("check", "vm-ok", "--to", "host-c", "--xml", x1)
    check(p.returncode == 1 and "cannot reach the vgpumig peer agent" in p.stderr and str(c.port) in p.stderr,
          f"peer down: exit 1 naming its address ({p.stderr.strip()!r})")

finish()
