#!/usr/bin/env python3
"""SIGKILL the target agent at each step of a claim, restart, compare.

The agent's test-only fault point (environment VGPUMIG_TEST_CRASH_AT, see
docs/vgpumigd.md) kills it at:
  claim-before-write   devices chosen (maybe created), claim not yet stored
  claim-after-write    claim durable in the store, reply not yet sent
  commit-after-write   commit durable, reply not yet sent
and, last, a plain SIGKILL from outside with claims held and committed.
After each restart (and a gc): every device in sysfs belongs to exactly one
live claim or was there before, every live claim's devices exist, nothing is
owned twice, and the source's retry with the same migration id gets a
consistent answer.
"""
import signal
import time
import uuid

from agentlab import Lab, check, claim_body, device, finish, owners

POINTS = ["claim-before-write", "claim-after-write", "commit-after-write"]
matrix = []


def live_claims(b):
    return [c for c in b.claims() if c.get("state") in ("held", "committed")]


def consistent(b, base, tag):
    live = live_claims(b)
    targets = [m["target_id"] for c in live for m in (c.get("mapping") or [])]
    mdevs = b.mdevs()
    ok1 = check(len(targets) == len(set(targets)), f"{tag}: no device owned twice in the store")
    ok2 = check(all(len(v) == 1 for v in owners(b).values()), f"{tag}: no device has two owners")
    ok3 = check(all(t in mdevs for t in targets), f"{tag}: every live claim's device exists in sysfs")
    extra = set(mdevs) - set(targets) - set(base)
    ok4 = check(not extra, f"{tag}: no leaked device in sysfs (extra: {sorted(extra)})")
    return ok1 and ok2 and ok3 and ok4


def wait_dead(h, timeout=15):
    try:
        rc = h.agent.wait(timeout)
    except Exception:
        h.agent.kill()
        rc = h.agent.wait()
    h.agent = None
    return rc


with Lab() as lab:
    a, b = lab["host-a"], lab["host-b"]
    a.start_emulator("A100", gpus=1)
    b.start_emulator("A100", gpus=2)
    a.start_agent()
    b.start_agent()
    base = dict(b.mdevs())

    for point in POINTS:
        mig = f"crash-{point}"
        body = claim_body(mig, "host-a", [device(str(uuid.uuid4())),
                                          device(str(uuid.uuid4()), "NVIDIA A100-4C", 4096, "nvidia-471")])
        b.stop_agent()
        claim_id = None
        if point == "commit-after-write":
            b.start_agent()
            r = b.peer("POST", "/v1/claims", body, as_host=a)
            check(r.status == 201, f"{point}: claim before the commit (got {r})")
            claim_id = (r.json() or {}).get("claim_id")
            b.stop_agent()
        b.start_agent(env={"VGPUMIG_TEST_CRASH_AT": point})
        known = set(b.mdevs())
        try:
            if point == "commit-after-write":
                r = b.peer("POST", f"/v1/claims/{claim_id}/commit", {}, as_host=a, timeout=20)
            else:
                r = b.peer("POST", "/v1/claims", body, as_host=a, timeout=20)
            answered = r
        except Exception as e:
            answered = None
        check(answered is None, f"{point}: the request got no reply (got {answered})")
        rc = wait_dead(b)
        check(rc in (-signal.SIGKILL, 137), f"{point}: the agent died by SIGKILL (rc {rc})")
        stray = sorted(set(b.mdevs()) - known)  # made by the request that crashed

        b.start_agent()
        p = b.cli("gc")
        check(p.returncode == 0, f"{point}: gc after restart ({p.stderr.strip()})")
        ok = consistent(b, base, point)
        mine = [c for c in live_claims(b) if c.get("migration_id") == mig]

        # the source retries what it did not hear back about
        if point == "claim-before-write":
            check(not mine, f"{point}: no claim survives a crash before it was written")
            r = b.peer("POST", "/v1/claims", body, as_host=a)
            check(r.status == 201, f"{point}: the retry claims afresh (got {r})")
            check(not (set(stray) & set(b.mdevs())) - {m["target_id"] for c in live_claims(b)
                                                        for m in (c.get("mapping") or [])},
                  f"{point}: the {len(stray)} device(s) made before the crash are gone or owned")
            outcome = f"no claim, {len(stray)} stray dev removed; retry ok"
        elif point == "claim-after-write":
            check(len(mine) == 1 and mine[0].get("state") == "held",
                  f"{point}: the durable claim is held after restart ({mine})")
            r = b.peer("POST", "/v1/claims", body, as_host=a)
            j = r.json() or {}
            check(r.status in (200, 201) and mine and j.get("claim_id") == mine[0].get("claim_id"),
                  f"{point}: the retry with the same migration id gets the stored claim (got {r})")
            outcome = "claim held; retry returns it"
        else:
            check(len(mine) == 1 and mine[0].get("state") == "committed",
                  f"{point}: the commit survived ({mine})")
            r = b.peer("POST", f"/v1/claims/{claim_id}/commit", {}, as_host=a)
            check(r.status == 200, f"{point}: a repeated commit is harmless (got {r})")
            outcome = "committed; repeat commit ok"
        ok = consistent(b, base, f"{point} after retry") and ok
        matrix.append((point, outcome, "consistent" if ok else "INCONSISTENT"))

    # SIGKILL from outside, with claims held and committed
    before = sorted((c["claim_id"], c.get("state")) for c in live_claims(b))
    devs_before = b.mdevs()
    b.agent.send_signal(signal.SIGKILL)
    wait_dead(b)
    b.start_agent()
    b.cli("gc")
    after = sorted((c["claim_id"], c.get("state")) for c in live_claims(b))
    check(after == before, "kill -9 at rest: every claim survives with its state")
    check(b.mdevs() == devs_before, "kill -9 at rest: sysfs unchanged")
    ok = consistent(b, base, "kill -9 at rest")
    matrix.append(("at rest", "claims and devices unchanged", "consistent" if ok else "INCONSISTENT"))

    # release everything: back to where we started (locally: a peer may not
    # release a committed claim)
    for c in live_claims(b):
        b.local("DELETE", f"/v1/claims/{c['claim_id']}")
    check(b.mdevs() == base, "after releasing every claim sysfs is back to its start")

print("\ncrash-safety matrix (step x outcome):")
for row in matrix:
    print(f"  {row[0]:<20} {row[1]:<40} {row[2]}")
finish()
