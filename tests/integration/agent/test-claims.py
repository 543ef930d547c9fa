#!/usr/bin/env python3
"""Cross-host claims between two agents over mutual TLS.

host-a plays the source: it asks host-b's peer API, with host-a's
certificate, to claim vGPUs for its devices.  Checked: the mapping, the
preference for the source's own UUID, reuse of an existing free instance,
idempotency per migration id, all-or-nothing for mixed profiles, commit,
release (created devices removed, pre-existing ones kept) and lease expiry.
"""
import time
import uuid

from agentlab import Lab, check, claim_body, device, finish, owners

U_FREE = "22222222-2222-4222-8222-222222222222"   # exists on B, unassigned: the source's own UUID
U_LOW = "00000000-0000-4000-8000-000000000001"    # exists on B, unassigned, sorts first
U_SRC2 = "11111111-1111-4111-8111-111111111111"   # not on B
U_SRC3 = "33333333-3333-4333-8333-333333333333"   # not on B

with Lab() as lab:
    a, b = lab["host-a"], lab["host-b"]
    for h in (a, b):
        h.start_emulator("A100", gpus=2)
    for u in (U_FREE, U_SRC2, U_SRC3):
        a.create_mdev("nvidia-471", u)
    b.create_mdev("nvidia-471", U_FREE)
    b.create_mdev("nvidia-471", U_LOW)
    for h in (a, b):
        h.start_agent()
    base_b = b.mdevs()

    # --- the source's own UUID, free on B, wins over any other free instance ---
    r = b.peer("POST", "/v1/claims", claim_body("mig-1", "host-a", [device(U_FREE)]), as_host=a)
    check(r.status == 201, f"claim mig-1 answered 201 (got {r})")
    c1 = r.json() or {}
    m = (c1.get("mapping") or [{}])[0]
    check(m.get("source_id") == U_FREE and m.get("target_id") == U_FREE,
          f"the source's UUID, free on B, is chosen (no XML rewrite needed) (got {m.get('target_id')})")
    check(m.get("created") is False, "an existing instance is not marked created")
    check(b.mdevs() == base_b, "nothing created for mig-1")
    check(isinstance(c1.get("expires_at"), int) and c1["expires_at"] > time.time(),
          "the claim has a lease in the future")

    # --- idempotent per migration id ---
    r2 = b.peer("POST", "/v1/claims", claim_body("mig-1", "host-a", [device(U_FREE)]), as_host=a)
    check(r2.status in (200, 201), f"same migration id again is accepted (got {r2})")
    j2 = r2.json() or {}
    check(j2.get("claim_id") == c1.get("claim_id") and j2.get("mapping") == c1.get("mapping"),
          "same migration id gives the same claim and mapping")
    check(b.mdevs() == base_b, "nothing created for a repeated claim")

    # --- source UUID not on B: another free instance of the profile, or a new one ---
    r = b.peer("POST", "/v1/claims", claim_body("mig-2", "host-a", [device(U_SRC2)]), as_host=a)
    check(r.status == 201, f"claim mig-2 answered 201 (got {r})")
    c2 = r.json() or {}
    m2 = (c2.get("mapping") or [{}])[0]
    t2 = m2.get("target_id")
    check(t2 not in (None, U_FREE) and b.mdevs().get(t2) == "nvidia-471",
          f"mig-2 got a device of its profile that mig-1 does not own ({t2})")
    check(m2.get("created") == (t2 not in base_b), "mig-2's created flag says whether B made the device")

    # --- nothing free left: B creates one, with the source's UUID ---
    r = b.peer("POST", "/v1/claims", claim_body("mig-3", "host-a", [device(U_SRC3)]), as_host=a)
    check(r.status == 201, f"claim mig-3 answered 201 (got {r})")
    c3 = r.json() or {}
    m3 = (c3.get("mapping") or [{}])[0]
    if t2 == U_LOW:
        check(m3.get("target_id") == U_SRC3 and m3.get("created") is True,
              f"no free instance left: B creates one with the source's UUID ({m3})")
    check(b.mdevs().get(m3.get("target_id")) == "nvidia-471", "mig-3's device exists with the asked-for type")

    # --- a UUID owned by a claim is never handed out again ---
    r = b.peer("POST", "/v1/claims", claim_body("mig-1b", "host-a", [device(U_FREE)]), as_host=a)
    check(r.status == 201, f"claim mig-1b answered 201 (got {r})")
    c1b = r.json() or {}
    t1b = ((c1b.get("mapping") or [{}])[0]).get("target_id")
    check(t1b not in (None, U_FREE, t2, m3.get("target_id")),
          f"an owned UUID is not handed out twice (mig-1b got {t1b})")
    r = b.peer("DELETE", f"/v1/claims/{c1b.get('claim_id')}", as_host=a)
    check(r.status in (200, 204) and t1b not in b.mdevs(), "mig-1b released, its created device removed")

    # --- mixed profiles in one claim: all or nothing ---
    before = b.mdevs()
    r = b.peer("POST", "/v1/claims", claim_body("mig-4", "host-a", [
        device(str(uuid.uuid4())),
        device(str(uuid.uuid4()), "NVIDIA A100-8C", 8192, "nvidia-473")]), as_host=a)
    check(r.status == 201, f"mixed-profile claim (4C on GPU0, 8C on GPU1) answered 201 (got {r})")
    mp = (r.json() or {}).get("mapping") or []
    types = sorted(b.mdevs().get(x.get("target_id")) or "" for x in mp)
    check(types == ["nvidia-471", "nvidia-473"], f"both profiles mapped to devices of their type ({types})")
    c4 = r.json() or {}

    before = b.mdevs()
    r = b.peer("POST", "/v1/claims", claim_body("mig-5", "host-a", [
        device(str(uuid.uuid4())),
        device(str(uuid.uuid4()), "NVIDIA A100-40C", 40960, "nvidia-476")]), as_host=a)
    j = r.json() or {}
    check(r.status == 409, f"a claim that cannot be met in full is refused with 409 (got {r})")
    check("A100-40C" in (j.get("message") or "") and j.get("code"),
          f"the refusal names the profile that is missing: {j.get('message')!r}")
    check(b.mdevs() == before, "a refused claim leaves B's devices exactly as they were")
    check(not any(c.get("migration_id") == "mig-5" for c in b.claims()), "no claim recorded for mig-5")

    # --- the claim list and owners ---
    cl = b.claims()
    ids = {c.get("claim_id") for c in cl}
    check({c1.get("claim_id"), c2.get("claim_id"), c3.get("claim_id"), c4.get("claim_id")} <= ids,
          "`vgpumig claims --json` lists every claim")
    check(all(len(v) == 1 for v in owners(b).values()), "no device has two owners")
    p = b.cli("claims")
    check(p.returncode == 0 and c1.get("claim_id", "?") in p.stdout and U_FREE in p.stdout,
          "`vgpumig claims` prints a table with claim ids and devices")

    # --- commit ---
    r = b.peer("POST", f"/v1/claims/{c1['claim_id']}/commit", {}, as_host=a)
    check(r.status == 200, f"commit mig-1 answered 200 (got {r})")
    st = {c["claim_id"]: c.get("state") for c in b.claims()}
    check(st.get(c1["claim_id"]) == "committed", f"mig-1 is committed (state {st.get(c1['claim_id'])})")
    asg = b.cli_json("claims").get("assignments") or []
    check([x.get("device_id") for x in asg if x.get("from_claim") == c1["claim_id"]] == [U_FREE],
          f"after commit, mig-1's device is assigned to its domain (assignments {asg})")
    p = b.cli("claims")
    check(p.returncode == 0 and "ASSIGNED DEVICE" in p.stdout and U_FREE in p.stdout,
          "`vgpumig claims` prints the assignments table")
    r = b.peer("POST", f"/v1/claims/{c1['claim_id']}/commit", {}, as_host=a)
    check(r.status == 200, f"a second commit is harmless (got {r})")
    r = b.peer("POST", f"/v1/claims/{uuid.uuid4()}/commit", {}, as_host=a)
    check(r.status == 404 and (r.json() or {}).get("message"), f"commit of an unknown claim: 404 (got {r})")

    # --- release ---
    r = b.peer("DELETE", f"/v1/claims/{c3['claim_id']}", as_host=a)
    check(r.status in (200, 204), f"release mig-3 answered 2xx (got {r})")
    if m3.get("created"):
        check(m3.get("target_id") not in b.mdevs(), "the device created for mig-3 is removed on release")
    r = b.peer("DELETE", f"/v1/claims/{c2['claim_id']}", as_host=a)
    check(r.status in (200, 204), f"release mig-2 answered 2xx (got {r})")
    if not m2.get("created"):
        check(t2 in b.mdevs(), "a pre-existing device reused by mig-2 stays after release")
    r = b.peer("DELETE", f"/v1/claims/{c4['claim_id']}", as_host=a)
    check(all(x.get("target_id") not in b.mdevs() for x in mp), "mixed claim's created devices removed")
    check(all(len(v) == 1 for v in owners(b).values()), "still no device with two owners")
    r = b.peer("DELETE", f"/v1/claims/{c4['claim_id']}", as_host=a)
    check(r.status in (200, 204, 404), f"releasing twice is harmless (got {r})")
    hist = {c["claim_id"]: c.get("state") for c in b.cli_json("claims", "--all")["claims"]}
    check(hist.get(c3["claim_id"]) == "released" and c3["claim_id"] not in {c["claim_id"] for c in b.claims()},
          f"released claims are only in `vgpumig claims --all` (state {hist.get(c3['claim_id'])})")

    # --- lease expiry: restart B with a 2 s lease ---
    b.stop_agent()
    b.start_agent(lease_seconds=2)
    check(b.mdevs().get(U_FREE) == "nvidia-471", "a committed claim's device survives an agent restart")
    # A100-8C: no free instance of it exists, so B creates one for each of these claims
    r = b.peer("POST", "/v1/claims", claim_body("mig-6", "host-a", [
        device(str(uuid.uuid4()), "NVIDIA A100-8C", 8192, "nvidia-473")]), as_host=a)
    check(r.status == 201, f"claim mig-6 with a 2 s lease (got {r})")
    m6 = ((r.json() or {}).get("mapping") or [{}])[0]
    t6 = m6.get("target_id")
    check(t6 in b.mdevs() and m6.get("created") is True, "mig-6's device was created and exists while the lease runs")
    time.sleep(3)
    p = b.cli("gc")
    check(p.returncode == 0, f"`vgpumig gc` runs (rc {p.returncode}: {p.stderr.strip()})")
    live = [c for c in b.claims() if c.get("migration_id") == "mig-6" and c.get("state") != "released"]
    check(not live, "the expired claim is released by gc")
    check(t6 not in b.mdevs(), "the device created for the expired claim is removed")
    st = {c["claim_id"]: c.get("state") for c in b.claims()}
    check(st.get(c1["claim_id"]) == "committed", "a committed claim does not expire")

    # lease expiry without gc: the housekeeping timer does it on its own
    r = b.peer("POST", "/v1/claims", claim_body("mig-7", "host-a", [
        device(str(uuid.uuid4()), "NVIDIA A100-8C", 8192, "nvidia-473")]), as_host=a)
    t7 = (((r.json() or {}).get("mapping") or [{}])[0]).get("target_id")
    check(r.status == 201 and t7 in b.mdevs(), "claim mig-7 with a 2 s lease")
    gone = False
    end = time.monotonic() + 90
    while time.monotonic() < end and not gone:
        time.sleep(0.5)
        gone = not [c for c in b.claims() if c.get("migration_id") == "mig-7" and c.get("state") == "held"]
    check(gone, "the housekeeping timer releases an expired claim without gc")
    check(t7 not in b.mdevs(), "and removes the device it created for it")

finish()
