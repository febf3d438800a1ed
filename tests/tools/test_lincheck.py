#!/usr/bin/env python3
"""Unit tests of lincheck.py on hand-made histories, plus a differential test against a
brute-force checker on small random histories. Run: python3 tests/tools/test_lincheck.py"""

import io
import itertools
import json
import os
import random
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lincheck  # noqa: E402


class H:
    """Builds a history: h.put(client, value, t0, t1, result) ... ; t1 None = unknown outcome."""

    def __init__(self):
        self.recs = []

    def add(self, client, op, t0, t1, result, key="k", read=None, **args):
        if t1 is None:
            result = "unknown"
        rec = {"client": client, "key": key, "op": op, "args": args, "invoke": t0,
               "return": t1, "result": result}
        if read is not None:
            rec["read"] = read
        self.recs.append(rec)
        return self

    def put(self, c, v, t0, t1, res="ok", key="k"):
        return self.add(c, "put", t0, t1, res, key, value=v)

    def get(self, c, v, t0, t1, key="k"):
        """v None: the get answered 404 (absent)."""
        if v is None:
            return self.add(c, "get", t0, t1, "absent", key)
        return self.add(c, "get", t0, t1, "ok", key, read=v)

    def delete(self, c, t0, t1, res="ok", key="k"):
        return self.add(c, "delete", t0, t1, res, key)

    def create(self, c, v, t0, t1, res="ok", key="k"):
        return self.add(c, "create", t0, t1, res, key, value=v)

    def cas(self, c, expect, v, t0, t1, res="ok", key="k"):
        return self.add(c, "cas", t0, t1, res, key, value=v, expect=expect)

    def lines(self):
        return [json.dumps(r) for r in self.recs]

    def check(self, budget=100000):
        """(exit status, printed report) of the checker's main() on this history."""
        with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False) as f:
            f.write("\n".join(self.lines()) + "\n")
        out = io.StringIO()
        old = sys.stdout
        sys.stdout = out
        try:
            rc = lincheck.main([f.name, "--budget", str(budget)])
        finally:
            sys.stdout = old
            os.unlink(f.name)
        return rc, out.getvalue()


class Linearizable(unittest.TestCase):
    def assertOk(self, h):
        rc, out = h.check()
        self.assertEqual(rc, 0, out)
        self.assertIn("1 keys linearizable, 0 not", out)

    def test_sequential_all_kinds(self):
        h = H().put(1, "a", 0, 10).get(1, "a", 20, 30).delete(1, 40, 50).get(1, None, 60, 70)
        h.create(1, "b", 80, 90).create(2, "c", 100, 110, "precondition-failed")
        h.cas(1, "b", "d", 120, 130).cas(2, "b", "e", 140, 150, "precondition-failed")
        h.get(2, "d", 160, 170).delete(1, 180, 190).cas(1, "d", "f", 200, 210, "not-found")
        self.assertOk(h)

    def test_concurrent_read_sees_old_or_new(self):
        h = H().put(1, "a", 0, 10).put(1, "b", 20, 100).get(2, "b", 30, 40).get(3, "b", 50, 60)
        self.assertOk(h)
        h = H().put(1, "a", 0, 10).put(1, "b", 20, 100).get(2, "a", 30, 40).get(3, "b", 50, 60)
        self.assertOk(h)

    def test_touching_intervals_are_concurrent(self):
        # The get returns at 10, the same instant the put is invoked: concurrent, so it may read b.
        self.assertOk(H().put(1, "b", 10, 20).get(2, "b", 0, 10))

    def test_unknown_write_that_must_have_happened(self):
        h = H().put(1, "a", 0, 10).put(1, "b", 20, None).get(2, "b", 1000, 1010)
        self.assertOk(h)

    def test_unknown_write_that_never_happened(self):
        h = H().put(1, "a", 0, 10).put(1, "b", 20, None).get(2, "a", 1000, 1010)
        h.get(2, "a", 2000, 2010)
        self.assertOk(h)

    def test_unknown_write_late_effect(self):
        # b takes effect long after its client gave up: still legal.
        h = H().put(1, "b", 0, None).get(2, None, 100, 110).get(2, None, 200, 210)
        h.get(2, "b", 300, 310)
        self.assertOk(h)

    def test_unknown_conditional_ops(self):
        h = H().put(1, "a", 0, 10).create(2, "x", 20, None).get(3, "a", 100, 110)
        h.cas(1, "a", "b", 120, None).get(3, "b", 200, 210)
        self.assertOk(h)

    def test_failed_ops_and_unknown_reads_are_ignored(self):
        h = H().put(1, "a", 0, 10).put(2, "zz", 20, 30, "failed").get(3, "zz", 40, None)
        h.get(3, "a", 50, 60)
        self.assertOk(h)

    def test_start_cut_inside_concurrent_write(self):
        # The put spans both gets: the absent read comes before its effect, the b read after.
        h = H().put(1, "b", 0, 100).get(2, None, 10, 20).get(2, "b", 30, 40)
        self.assertOk(h)

    def test_cut_points_skip_overlaps(self):
        h = H().put(1, "b", 0, 100).get(2, None, 10, 20).get(2, "b", 30, 40)
        h.put(1, "c", 200, 210).put(2, "d", 205, None).get(3, "c", 220, 230)
        ops = lincheck.parse(h.lines())["k"]
        # no cut inside put b (it spans both gets) nor at put d (put c still runs); the unknown
        # put d does not stop the cut before get c
        self.assertEqual(lincheck.cut_points(ops), [0, 3, 5, 6])

    def test_keys_are_independent(self):
        h = H().put(1, "a", 0, 10, key="x").put(1, "a2", 0, 10, key="y").get(2, "a", 20, 30,
                                                                             key="x")
        h.get(2, "a2", 20, 30, key="y")
        rc, out = h.check()
        self.assertEqual(rc, 0, out)
        self.assertIn("2 keys linearizable", out)


class NotLinearizable(unittest.TestCase):
    def assertFails(self, h, *expect):
        rc, out = h.check()
        self.assertEqual(rc, 1, out)
        self.assertIn("NOT linearizable", out)
        for s in expect:
            self.assertIn(s, out)
        return out

    def test_stale_read(self):
        h = H().put(1, "a", 0, 10).put(1, "b", 20, 30).get(2, "a", 40, 50)
        self.assertFails(h, "get -> 'a'")

    def test_lost_write(self):
        h = H().put(1, "a", 0, 10).get(2, None, 20, 30)
        self.assertFails(h, "get -> absent")

    def test_lost_write_after_overwrite(self):
        h = H().put(1, "a", 0, 10).put(2, "b", 5, 15).get(3, "b", 20, 30).get(3, "a", 40, 50)
        self.assertFails(h)

    def test_two_creates_both_succeed(self):
        h = H().create(1, "a", 0, 10).create(2, "b", 5, 15)
        self.assertFails(h, "create")

    def test_cas_on_overwritten_value(self):
        h = H().put(1, "a", 0, 10).put(2, "b", 20, 30).cas(1, "a", "c", 40, 50)
        self.assertFails(h)

    def test_read_of_value_never_written(self):
        h = H().put(1, "a", 0, 10).get(2, "ghost", 20, 30)
        self.assertFails(h, "'ghost'")

    def test_unknown_write_read_before_invoked(self):
        h = H().get(2, "b", 0, 10).put(1, "b", 20, None)
        self.assertFails(h)

    def test_unknown_write_cannot_undo(self):
        # b's effect may happen at most once: a, then b, then a again would need a second put a.
        h = H().put(1, "a", 0, 10).put(1, "b", 20, None).get(2, "b", 100, 110)
        h.get(2, "a", 200, 210)
        self.assertFails(h)

    def test_unknown_create_must_not_have_succeeded(self):
        h = H().create(1, "a", 0, None).get(2, "a", 50, 60).create(3, "b", 70, 80)
        self.assertFails(h)

    def test_window_is_small(self):
        # 200 linearizable ops, then a stale read: the report must point at a handful of ops.
        h = H()
        t = 0
        for i in range(100):
            h.put(1 + i % 3, "v%d" % i, t, t + 10)
            h.get(4, "v%d" % i, t + 20, t + 30)
            t += 40
        h.get(4, "v97", t, t + 10)
        out = self.assertFails(h, "get -> 'v97'")
        shown = [ln for ln in out.splitlines() if ln.startswith("    [")]
        self.assertLessEqual(len(shown), 4, out)


class ManyUnknowns(unittest.TestCase):
    """Timeouts leave unknown writes that never took effect; a failing history with many of
    them must still get a verdict, not an exhausted budget."""

    def history(self, stale):
        h = H()
        t = 0
        for i in range(150):
            h.put(1, "v%d" % i, t, t + 10)
            h.put(2, "lost%d" % i, t + 5, None)  # timed out, never applied
            h.create(3, "c%d" % i, t + 12, t + 20, "precondition-failed")
            h.get(4, "v%d" % i, t + 22, t + 30)
            t += 40
        h.get(4, "v140" if stale else "v149", t, t + 10)
        return h

    def test_verdicts_within_budget(self):
        rc, out = self.history(False).check(budget=200000)
        self.assertEqual(rc, 0, out)
        rc, out = self.history(True).check(budget=200000)
        self.assertEqual(rc, 1, out)
        self.assertIn("get -> 'v140'", out)


class Budget(unittest.TestCase):
    def test_budget_exhausted_is_exit_3(self):
        # 12 concurrent puts and reads that force the search through many orders, then a read
        # of the first value after all: not linearizable, but the tiny budget stops it first.
        h = H()
        for i in range(12):
            h.put(i, "v%d" % i, 0, 1000)
        h.get(20, "v0", 2000, 2010)
        rc, out = h.check(budget=50)
        self.assertEqual(rc, 3, out)
        self.assertIn("too large", out)
        rc, out = h.check(budget=10 ** 6)
        self.assertEqual(rc, 0, out)


class BadInput(unittest.TestCase):
    def run_lines(self, lines):
        with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False) as f:
            f.write("\n".join(lines) + "\n")
        err = io.StringIO()
        old = sys.stderr
        sys.stderr = err
        try:
            rc = lincheck.main([f.name])
        finally:
            sys.stderr = old
            os.unlink(f.name)
        return rc, err.getvalue()

    def test_bad_records(self):
        for line, why in [
            ("{not json", "not JSON"),
            ('{"key":"k","op":"put","invoke":0,"result":"ok","return":1}', "args.value"),
            ('{"key":"k","op":"get","invoke":0,"return":1,"result":"precondition-failed"}',
             "cannot return"),
            ('{"key":"k","op":"rename","invoke":0,"return":1,"result":"ok"}', "unknown op"),
            ('{"key":"k","op":"delete","invoke":5,"return":1,"result":"ok"}', "before"),
            ('{"key":"k","op":"get","invoke":0,"return":1,"result":"ok"}', "'read'"),
        ]:
            rc, err = self.run_lines([line])
            self.assertEqual(rc, 2, line)
            self.assertIn(why, err)


def brute_force(ops):
    """Linearizable? by trying every order of every subset that holds all completed ops."""
    done = [o for o in ops if o.ret != lincheck.INF]
    unk = [o for o in ops if o.ret == lincheck.INF]
    for k in range(len(unk) + 1):
        for extra in itertools.combinations(unk, k):
            sel = done + list(extra)
            for order in itertools.permutations(sel):
                legal = all(not (b.ret < a.invoke) for i, a in enumerate(order)
                            for b in order[i + 1:])
                if not legal:
                    continue
                state = None
                for o in order:
                    state = lincheck.step(state, o)
                    if state is lincheck.BAD:
                        break
                else:
                    return True
    return False


class Differential(unittest.TestCase):
    def test_random_small_histories(self):
        rng = random.Random(9)
        kinds = ["put", "get", "delete", "create", "cas"]
        seen = {True: 0, False: 0}
        for _ in range(3000):
            h = H()
            vals = ["a", "b", "c"]
            p_unknown = rng.choice([0, 0.15, 0.4])
            for i in range(rng.randint(2, 6)):
                kind = rng.choice(kinds)
                t0 = rng.randint(0, 40)
                t1 = None if rng.random() < p_unknown else t0 + rng.randint(0, 20)
                res = rng.choice([r for r in lincheck.RESULTS[kind]
                                  if r not in ("unknown", "failed")])
                if kind == "get":
                    h.get(i, rng.choice(vals + [None]), t0, t1)
                elif kind in ("put", "create"):
                    h.add(i, kind, t0, t1, res, value=vals[i % 3] + str(i))
                elif kind == "cas":
                    h.cas(i, rng.choice(vals), vals[i % 3] + str(i), t0, t1, res)
                else:
                    h.delete(i, t0, t1)
            # reads name written values sometimes
            written = [r["args"]["value"] for r in h.recs if "value" in r["args"]]
            for r in h.recs:
                if r.get("read") is not None and written and rng.random() < 0.7:
                    r["read"] = rng.choice(written)
                if r["op"] == "cas" and written and rng.random() < 0.7:
                    r["args"]["expect"] = rng.choice(written)
            keys = lincheck.parse(h.lines())
            ops = keys.get("k", [])
            want = brute_force(ops)
            zob = [random.getrandbits(128) for _ in ops]
            got = lincheck.search(ops, None, 10 ** 6, zob).status
            self.assertEqual(got, "ok" if want else "fail", "\n".join(h.lines()))
            seen[want] += 1
            if not want:
                whole = lincheck.search(ops, None, 10 ** 6, zob)
                a, b, _, short = lincheck.shrink_window(ops, whole, 10 ** 6, zob)
                bad, _ = lincheck.window_fails(ops, a, b, [10 ** 6], zob)
                self.assertFalse(short)
                self.assertTrue(bad)
        # the generator must exercise both verdicts
        self.assertGreater(seen[True], 50)
        self.assertGreater(seen[False], 50)


if __name__ == "__main__":
    unittest.main()
