#!/usr/bin/env python3
"""ctl-pipe.py: drives vgpumig-ctl-pipe through a pipe, one line at a time
(each answer must arrive before the next line is written: flushed at once),
and checks its answers: refusal on physics, start actions, an in-flight
decision and abort with the numbers, a switchover limit when pre-copy stops
paying, and bad lines answered with an error that changes nothing."""
import json
import subprocess
import sys

GiB = 1 << 30
MiB = 1 << 20


class Pipe:
    def __init__(self, exe):
        self.p = subprocess.Popen([exe], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  text=True, bufsize=1)

    def ask(self, obj):
        line = obj if isinstance(obj, str) else json.dumps(obj)
        self.p.stdin.write(line + "\n")
        self.p.stdin.flush()
        answer = self.p.stdout.readline()
        assert answer.endswith("\n"), f"no answer line for {line!r}"
        return json.loads(answer)

    def close(self):
        self.p.stdin.close()
        assert self.p.wait(timeout=10) == 0


def config(**kw):
    c = {"ram_bytes": 2 * GiB, "vgpus": [{"framebuffer_bytes": 512 * MiB, "precopy": None}],
         "max_downtime_ms": None, "timeout_ms": None, "bandwidth_bps": None,
         "link_bps": None, "dirty_rate_bps": None}
    c.update(kw)
    return {"config": c}


def sample(t_ms, it, processed, remaining, bps=GiB, vfio=0, **kw):
    s = {"time_elapsed": t_ms, "memory_total": 2 * GiB, "memory_processed": processed,
         "memory_remaining": remaining, "memory_iteration": it, "memory_bps": bps,
         "vfio_data_transferred": vfio, "memory_dirty_rate": 0, "memory_page_size": 4096}
    s.update(kw)
    return {"sample": s}


def test_refuse(exe):
    p = Pipe(exe)
    a = p.ask(config(vgpus=[{"framebuffer_bytes": 2 * GiB, "precopy": False}],
                     max_downtime_ms=1000, link_bps=GiB))
    assert a["refuse"]["code"] == "downtime_exceeded", a
    assert "2.0 GiB" in a["refuse"]["reason"] and "1.0 GiB/s link" in a["refuse"]["reason"], a
    # After a refusal nothing more happens.
    assert p.ask(sample(500, 1, 0, 2 * GiB)) == {"actions": []}
    p.close()


def test_start_and_abort_in_flight(exe):
    p = Pipe(exe)
    # No link known: no refusal on an assumed speed; the cap is set.
    a = p.ask(config(max_downtime_ms=400, bandwidth_bps=None))
    assert a == {"start": [{"set_downtime_ms": 10}]}, a
    # RAM moves, the vGPU sends nothing: it moves at stop-copy, 512 MiB at
    # the 1 GiB/s learnt link does not fit in 400 ms: abort with the numbers.
    answers = [p.ask(sample(750 + 250 * i, 1, (i + 1) * 256 * MiB, 2 * GiB - (i + 1) * 256 * MiB))
               for i in range(4)]
    assert answers[:3] == [{"actions": []}] * 3, answers
    ab = answers[3]["actions"][0]["abort"]
    assert ab["code"] == "downtime_exceeded", ab
    assert "512.0 MiB of vGPU state at stop-copy" in ab["reason"], ab
    assert "link 1.0 GiB/s" in ab["reason"] and "--max-downtime 400 ms" in ab["reason"], ab
    p.close()


def test_switch_and_bad_lines(exe):
    p = Pipe(exe)
    a = p.ask(config(vgpus=[{"framebuffer_bytes": 400 * MiB, "precopy": False}],
                     bandwidth_bps=512 * MiB, link_bps=100 * MiB))
    assert a == {"start": [{"set_downtime_ms": 10}, {"set_bandwidth_bps": 512 * MiB}]}, a
    # Bad lines: an error each, and the controller state is unchanged.
    for bad in ["{not json", '{"sample": {"memory_bps": -1}}', '{"sample": 3}', "[]",
                '{"config": {"ram_bytes": 1}}']:
        e = p.ask(bad)
        assert e["error"]["code"] == "invalid_request" and e["error"]["message"], (bad, e)
    # Round 0 of 2 GiB, then rounds of 256 and 64 MiB: with 400 MiB of
    # stop-copy state one more round saves little: the limit goes up.
    ms, processed = 2000, 0
    assert p.ask(sample(ms, 1, processed, 2 * GiB, bps=100 * MiB)) == {"actions": []}
    acts = []
    for it, sent, rem in [(2, 2 * GiB, 256 * MiB), (3, 256 * MiB, 64 * MiB)]:
        ms += 250
        processed += sent
        acts = p.ask(sample(ms, it, processed, rem, bps=100 * MiB))["actions"]
    assert len(acts) == 1 and "set_downtime_ms" in acts[0], acts
    assert 4000 < acts[0]["set_downtime_ms"] < 5000, acts
    p.close()


def main():
    exe = sys.argv[1]
    for t in (test_refuse, test_start_and_abort_in_flight, test_switch_and_bad_lines):
        t(exe)
        print(f"ok {t.__name__}")


if __name__ == "__main__":
    main()
