#!/usr/bin/env python3
"""100 claims at once for 8 vGPUs.

host-b has one A100 GPU: at most 8 "NVIDIA A100-5C" vGPUs fit on it.  100
different migrations ask host-b's peer API at the same time for one each.
Exactly 8 must win, the 92 others get a 409 with a message, and no device may
end up with two owners, neither in the store nor in sysfs.  Then the same
with claims on the local API mixed in, after the 8 are released.  Last, 20
claims at once for exactly 20 slots on two GPUs: all must succeed (a full GPU
must not refuse a claim the other GPU can take).
"""
import threading
import uuid

from agentlab import Lab, check, claim_body, device, finish, owners

N = 100
CAP = 8


def race(b, a, tag, via_local_every=0):
    results = [None] * N
    start = threading.Barrier(N)

    def one(i):
        body = claim_body(f"{tag}-{i}", "host-a", [device(str(uuid.uuid4()), "NVIDIA A100-5C", 5120, "nvidia-472")])
        start.wait()
        try:
            if via_local_every and i % via_local_every == 0:
                results[i] = b.local("POST", "/v1/claims", body, timeout=120)
            else:
                results[i] = b.peer("POST", "/v1/claims", body, as_host=a, timeout=120)
        except Exception as e:  # a transport error is a failure too
            results[i] = e

    threads = [threading.Thread(target=one, args=(i,)) for i in range(N)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def verify(b, results, tag):
    won = [r for r in results if getattr(r, "status", None) == 201]
    lost = [r for r in results if getattr(r, "status", None) == 409]
    other = [r for r in results if r not in won and r not in lost]
    check(len(won) == CAP, f"{tag}: exactly {CAP} claims succeed (got {len(won)})")
    check(len(lost) == N - CAP, f"{tag}: the other {N - CAP} get 409 (got {len(lost)}; other: {other[:3]})")
    msgs = {(r.json() or {}).get("message") or "" for r in lost}
    check(all("A100-5C" in m for m in msgs), f"{tag}: every 409 names the profile ({sorted(msgs)[:2]})")
    check(all((r.json() or {}).get("code") for r in lost), f"{tag}: every 409 has a code")
    targets = [((r.json() or {}).get("mapping") or [{}])[0].get("target_id") for r in won]
    check(len(set(targets)) == len(targets) == CAP, f"{tag}: the winners got {CAP} distinct devices")
    own = owners(b)
    check(all(len(v) == 1 for v in own.values()), f"{tag}: no device has two owners in the store")
    mdevs = b.mdevs()
    check(sorted(mdevs) == sorted(targets), f"{tag}: sysfs holds exactly the claimed devices")
    check(set(mdevs.values()) == {"nvidia-472"}, f"{tag}: all of type nvidia-472")
    return won


with Lab() as lab:
    a, b = lab["host-a"], lab["host-b"]
    a.start_emulator("A100", gpus=1)
    b.start_emulator("A100", gpus=1)
    a.start_agent()
    b.start_agent()

    won = verify(b, race(b, a, "par"), "peer API")

    # release the winners: capacity comes back, devices go away
    for r in won:
        cid = (r.json() or {}).get("claim_id")
        rel = b.peer("DELETE", f"/v1/claims/{cid}", as_host=a)
        check(rel.status in (200, 204), f"release {cid} (got {rel})")
    check(b.mdevs() == {}, "after releasing every claim no device is left")

    # again, a tenth of the requests on the local unix-socket API
    verify(b, race(b, a, "mix", via_local_every=10), "peer and local API")

# Room for exactly as many as ask: two GPUs, 10 "NVIDIA A100-4C" each; 20 at
# once must all succeed, filling both GPUs (one full GPU must not refuse a
# claim that the other can take).
with Lab() as lab:
    a, b = lab["host-a"], lab["host-b"]
    a.start_emulator("A100", gpus=1)
    b.start_emulator("A100", gpus=2)
    a.start_agent()
    b.start_agent()
    results = [None] * 20
    start = threading.Barrier(20)

    def one(i):
        body = claim_body(f"full-{i}", "host-a", [device(str(uuid.uuid4()))])
        start.wait()
        try:
            results[i] = b.peer("POST", "/v1/claims", body, as_host=a, timeout=120)
        except Exception as e:
            results[i] = e

    threads = [threading.Thread(target=one, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    bad = [r for r in results if getattr(r, "status", None) != 201]
    check(not bad, f"20 claims for 20 slots on two GPUs: all succeed ({len(bad)} refused: {bad[:1]})")
    check(len(b.mdevs()) == 20 and all(len(v) == 1 for v in owners(b).values()),
          "20 devices, one owner each")

finish()
