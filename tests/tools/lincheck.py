#!/usr/bin/env python3
"""Linearizability checker for single-key S3 register histories (Wing-Gong search, memoised).

Model: every key is an independent register whose state is a value or "absent" (initially
absent). Operations and the results they may return:
  put(value)                      -> ok                      state := value
  get                             -> ok + read value | absent  state unchanged, must match
  delete                          -> ok                      state := absent
  create(value)  (If-None-Match *) -> ok (state was absent, state := value)
                                    | precondition-failed (state was present, unchanged)
  cas(expect, value)  (If-Match on the ETag of `expect`)
                                  -> ok (state was expect, state := value)
                                    | precondition-failed (state present and not expect)
                                    | not-found (state absent)
Any op may also end "unknown" (timeout, 5xx, dropped connection): it may or may not have taken
effect, at any instant after its invocation (its return time is +infinity), and its result is not
known. "failed" (a definite 4xx refusal) means it had no effect; such ops and unknown gets are
dropped before the search because they constrain nothing.

Input: JSON lines, one record per operation:
  {"client": 3, "key": "k1", "op": "put"|"get"|"delete"|"create"|"cas",
   "args": {"value": "...", "expect": "..."}, "invoke": NS, "return": NS or null,
   "result": "ok"|"absent"|"precondition-failed"|"not-found"|"unknown"|"failed",
   "read": "..." (get with result ok only)}
Extra fields are ignored. Times are integers from one clock (CLOCK_MONOTONIC of one machine);
an op A precedes B only when A.return < B.invoke (equal times count as concurrent).

Algorithm: P-compositionality (each key is checked alone), then the Wing-Gong search with Lowe's
memoisation as Porcupine does it: the completed ops form a time-ordered list of call and return
entries; the search walks the list, linearizes the first call it can (the model accepts it, and
the configuration was not explored before), removes that op's entries and restarts from the
head; reaching a return entry whose op is not linearized is a dead end, so it undoes the last
choice and tries the next call. The set of linearized ops is kept as a 128-bit Zobrist hash (XOR
of a random word per op), so a memo entry is small and O(1) to update; a collision could prune a
branch wrongly with probability ~ entries^2 / 2^129. Three reductions keep it fast (search()
and parse() argue them): a legal get or refused conditional put is taken without a choice
point; values nobody reads or expects are one value (OTHER); ops of unknown outcome have no
return entry, are optional, and are tried only at a dead end, only those that could enable a
waiting op, and a configuration with a superset of the unknown ops of an explored one is not
explored again.

Bounded: a search that tries more than --budget linearization steps for one key gives up and
reports the key as too large. For a failing key the checker then shrinks the history to a small
window that still fails on its own (see shrink_window) and prints it.

Exit status: 0 every key linearizable, 1 some key is not, 2 bad input, 3 no key failed but the
budget ran out on some key.
"""

import argparse
import json
import random
import sys

OK, ABSENT_R, PF, NF, UNKNOWN, FAILED = ("ok", "absent", "precondition-failed", "not-found",
                                         "unknown", "failed")
RESULTS = {
    "put": (OK, UNKNOWN, FAILED),
    "get": (OK, ABSENT_R, UNKNOWN, FAILED),
    "delete": (OK, UNKNOWN, FAILED),
    "create": (OK, PF, UNKNOWN, FAILED),
    "cas": (OK, PF, NF, UNKNOWN, FAILED),
}
WRITES = ("put", "create", "cas")  # ops whose args carry a value they may store
BAD = object()  # step() result: the model refuses the op in this state
NO = object()  # search(): the last op taken was not of unknown outcome
OTHER = "\x00<a value no op of the window mentions>"  # stands for all unmentioned values
INF = float("inf")


class BadInput(Exception):
    pass


class Op:
    """One operation of one key, as the search sees it."""

    __slots__ = ("n", "line", "client", "kind", "value", "sval", "expect", "result", "read",
                 "invoke", "ret")

    def __init__(self, line, rec):
        self.line = line  # 1-based line number in the input
        self.n = -1  # index inside the key's op list, set later
        self.client = rec.get("client")
        self.kind = rec["op"]
        args = rec.get("args") or {}
        self.value = args.get("value")
        self.sval = self.value  # the value as the search sees it (see parse)
        self.expect = args.get("expect")
        self.result = rec["result"]
        self.read = rec.get("read")
        self.invoke = rec["invoke"]
        self.ret = INF if self.result == UNKNOWN else rec["return"]

    def describe(self, t0):
        """One readable line: times in ms relative to t0."""
        if self.kind == "get":
            what = "get"
            res = repr(self.read) if self.result == OK else self.result
        elif self.kind == "delete":
            what, res = "delete", self.result
        elif self.kind == "cas":
            what, res = "cas(if %r) put %r" % (self.expect, self.value), self.result
        else:
            what, res = "%s %r" % (self.kind, self.value), self.result
        end = "   ...   " if self.ret == INF else "%9.3f" % ((self.ret - t0) / 1e6)
        return "[%9.3f, %s] client %s: %s -> %s   (line %d)" % (
            (self.invoke - t0) / 1e6, end, self.client, what, res, self.line)


def step(state, op):
    """The register model: the state after op, or BAD if op cannot return its result here."""
    k, r = op.kind, op.result
    if k == "get":
        if r == OK:
            return state if state == op.read else BAD
        return state if state is None else BAD
    if k == "put":
        return op.sval
    if k == "delete":
        return None
    if k == "create":
        if r == OK:
            return op.sval if state is None else BAD
        if r == PF:
            return state if state is not None else BAD
        return op.sval if state is None else state  # unknown
    # cas
    if r == OK:
        return op.sval if state == op.expect else BAD
    if r == PF:
        return state if state is not None and state != op.expect else BAD
    if r == NF:
        return state if state is None else BAD
    return op.sval if state == op.expect else state  # unknown


def parse(lines):
    """Group records by key: {key: [Op, ...]} sorted by invocation, dropping ops that constrain
    nothing (failed ops, unknown gets). Raises BadInput with the line number."""
    keys = {}
    for no, text in enumerate(lines, 1):
        if not text.strip():
            continue
        try:
            rec = json.loads(text)
        except ValueError as e:
            raise BadInput("line %d: not JSON (%s)" % (no, e))
        if not isinstance(rec, dict):
            raise BadInput("line %d: not a JSON object" % no)
        for field in ("key", "op", "invoke", "result"):
            if field not in rec:
                raise BadInput("line %d: no %r field" % (no, field))
        kind, res = rec["op"], rec["result"]
        if kind not in RESULTS:
            raise BadInput("line %d: unknown op %r" % (no, kind))
        if res not in RESULTS[kind]:
            raise BadInput("line %d: %s cannot return %r" % (no, kind, res))
        if not isinstance(rec["invoke"], int):
            raise BadInput("line %d: invoke must be an integer (ns)" % no)
        if res != UNKNOWN and not isinstance(rec.get("return"), int):
            raise BadInput("line %d: a %s op needs an integer return time" % (no, res))
        if res != UNKNOWN and rec["return"] < rec["invoke"]:
            raise BadInput("line %d: returns before it was invoked" % no)
        args = rec.get("args") or {}
        if kind in WRITES and not isinstance(args.get("value"), str):
            raise BadInput("line %d: %s needs args.value (a string)" % (no, kind))
        if kind == "cas" and not isinstance(args.get("expect"), str):
            raise BadInput("line %d: cas needs args.expect (a string)" % no)
        if kind == "get" and res == OK and not isinstance(rec.get("read"), str):
            raise BadInput("line %d: a get that returned ok needs 'read' (a string)" % no)
        if res == FAILED or (kind == "get" and res == UNKNOWN):
            continue
        keys.setdefault(str(rec["key"]), []).append(Op(no, rec))
    for ops in keys.values():
        ops.sort(key=lambda o: (o.invoke, o.line))
        # No op can tell apart two values that no get reads and no cas expects: the search
        # treats them all as OTHER, so fewer states and interchangeable unknown writes.
        seen = {o.read for o in ops if o.kind == "get"} | {o.expect for o in ops}
        for i, o in enumerate(ops):
            o.n = i
            if o.kind in WRITES and o.value not in seen:
                o.sval = OTHER
    return keys


class Outcome:
    """What one search found. status: "ok", "fail" or "budget"."""

    def __init__(self, status, steps, best):
        self.status = status
        self.steps = steps
        self.best = best  # (depth, blocking Op, states seen blocked at that depth)


class Unknowns:
    """Index of one key's unknown-outcome ops, to pick the few worth trying at a dead end."""

    def __init__(self, unk):
        self.unk = unk
        self.writer = {}  # value some op observes -> the unknown op that may have written it
        # Interchangeable unknown ops: any that may be taken now does what the others would
        # (none has a return time, and OTHER values cannot be told apart), so one is tried.
        self.deletes, self.other_puts, self.other_creates = [], [], []
        self.puts, self.creates = [], []  # those writing an observed value
        self.cas_from = {}  # expected value -> unknown cas ops
        for i, o in enumerate(unk):
            if o.kind == "delete":
                self.deletes.append(i)
            elif o.sval != OTHER:
                self.writer[o.sval] = i
                if o.kind != "cas":
                    (self.puts if o.kind == "put" else self.creates).append(i)
            elif o.kind == "put":
                self.other_puts.append(i)
            elif o.kind == "create":
                self.other_creates.append(i)
            if o.kind == "cas":
                self.cas_from.setdefault(o.expect, []).append(i)

    def candidates(self, state, pending, taken, bound):
        """Unknown ops (indexes) that could start a chain of unknown ops ending in an op of
        `pending` that needs it (see search()), among those invoked by `bound` and not in the
        bitset `taken`. A superset is fine; a missing one would make the search unsound."""
        unk = self.unk

        def usable(i):
            return not taken >> i & 1 and unk[i].invoke <= bound

        def first(lst):
            for i in lst:
                if unk[i].invoke > bound:
                    return []
                if not taken >> i & 1:
                    return [i]
            return []

        want, need_absent, need_present = [], False, False
        for o in pending:
            if o.kind == "get":
                if o.result == OK:
                    want.append(o.read)
                else:
                    need_absent = True
            elif o.kind == "create":
                if o.result == OK:
                    need_absent = True
                else:
                    need_present = True
            else:
                if o.result == OK:
                    want.append(o.expect)
                elif o.result == NF:
                    need_absent = True
                elif o.result == PF and (state is None or state == o.expect):
                    need_present = True  # a present value other than expect
        out, seen = set(), set()
        while want:
            v = want.pop()
            if v in seen:
                continue
            seen.add(v)
            i = self.writer.get(v)
            if i is None or not usable(i):
                continue
            out.add(i)
            if unk[i].kind == "cas":
                want.append(unk[i].expect)
            elif unk[i].kind == "create":
                need_absent = True
        if need_present:
            out.update(i for i in self.creates if usable(i))
            out.update(first(self.other_creates))
            if state is None:
                out.update(i for i in self.puts if usable(i))
                out.update(first(self.other_puts))
            else:
                need_absent = True  # a delete, then an unknown create
                out.update(i for i in self.puts if usable(i))
                out.update(first(self.other_puts))
                out.update(i for i in self.cas_from.get(state, ()) if usable(i))
        if need_absent:
            out.update(first(self.deletes))
        return sorted(out)


def search(ops, init, budget, zobrist):
    """Wing-Gong search over ops (one key, sorted by invocation) from state init: an Outcome."""
    done = [o for o in ops if o.ret != INF]
    unk = [o for o in ops if o.ret == INF]
    # Entries of completed ops: (time, 0=call/1=return, op index). Calls sort before returns at
    # equal times, so touching intervals count as concurrent.
    ents = sorted([(o.invoke, 0, o.n) for o in done] + [(o.ret, 1, o.n) for o in done])
    m = len(ents)
    # Doubly linked list over entry slots 0..m-1, slot m the head sentinel, -1 ends it.
    nxt = list(range(1, m)) + [-1] if m else []
    nxt.append(0 if m else -1)
    prv = [m] + list(range(0, m - 1)) if m else []
    prv.append(-1)
    is_call = [en[1] == 0 for en in ents]
    opn = [en[2] for en in ents]
    ret_slot = {en[2]: i for i, en in enumerate(ents) if en[1] == 1}
    match = [ret_slot[opn[i]] if is_call[i] else -1 for i in range(m)]
    index = Unknowns(unk)

    def unlink(i):
        nxt[prv[i]] = nxt[i]
        if nxt[i] != -1:
            prv[nxt[i]] = prv[i]

    def relink(i):  # undoes unlink(i); entries unlinked after i were relinked first
        nxt[prv[i]] = i
        if nxt[i] != -1:
            prv[nxt[i]] = i

    # An op that leaves the state as it is (a get, a refused conditional put) and is legal now
    # is linearized here without a choice point: any linearization that places it later can
    # place it here instead, as the state is the one it saw. So backtracking never tries an
    # alternative to it, and finding its successor configuration already explored means the
    # current one fails too.
    keeps = [o.kind == "get" or o.result in (PF, NF) for o in ops]
    # Unknown ops are optional, so a linearization can be normalised: drop an unknown op that
    # leaves the state as it is, or that is followed by a blind put or delete (or by nothing);
    # move one later past a following op that leaves the state as it is and was legal before
    # the unknown op too. What remains: every unknown op changes the state and is followed by
    # an op that needs it. The search builds only such linearizations: it tries unknown ops
    # only when no completed op can go next (a dead end), only those that could start a chain
    # of unknown ops ending in a waiting op that needs it (Unknowns.candidates), and after an
    # unknown op taken in state `obs` it tries only ops that are not blind and, if they keep
    # the state, were illegal in `obs` (obs is NO outside that situation).
    blind = [o.kind in ("put", "delete") for o in ops]
    # Memo: (Zobrist hash of the linearized completed ops, state, obs) -> the sets (bitsets
    # over unk) of linearized unknown ops it was explored with. A configuration whose unknown
    # set contains an explored one (with obs NO, or the same obs) is dominated by it: the
    # extra unknown ops may as well never have happened. Trying unknown ops last makes the
    # small sets come first.
    cache = {}

    def explored(lin_, st, ob, uset):
        for o_ in (NO, ob) if ob is not NO else (NO,):
            for x in cache.get((lin_, st, o_), ()):
                if x & ~uset == 0:
                    return True
        cache.setdefault((lin_, st, ob), []).append(uset)
        return False

    def needed(o):  # may o follow the unknown op taken in state obs?
        return obs is NO or not (blind[o.n] or (keeps[o.n] and step(obs, o) is not BAD))

    state, lin, ulin, obs = init, 0, 0, NO
    # (slot, state and obs before, no alternatives to try, unknown index or -1, cands, pos)
    stack = []
    steps = 0
    best = (-1, None, set())
    e, cands, pos = nxt[m], None, 0
    while True:
        if cands is None:
            if e == -1:
                return Outcome("ok", steps, best)
            if is_call[e]:
                steps += 1
                if steps > budget:
                    return Outcome("budget", steps, best)
                o = ops[opn[e]]
                ns = step(state, o) if needed(o) else BAD
                if ns is BAD:
                    e = nxt[e]
                    continue
                nl = lin ^ zobrist[o.n]
                if not explored(nl, ns, NO, ulin):
                    stack.append((e, state, obs, keeps[o.n], -1, None, 0))
                    state, lin, obs = ns, nl, NO
                    unlink(e)
                    unlink(match[e])
                    e = nxt[m]
                    continue
                if not keeps[o.n]:
                    e = nxt[e]
                    continue
                # else: dead end, fall through to backtracking
            else:
                # The first return entry: no completed op can go next. Record how far the
                # search got, then try the unknown ops that might help.
                depth = len(stack)
                if depth > best[0]:
                    best = (depth, ops[opn[e]], {state})
                elif depth == best[0] and ops[opn[e]] is best[1] and len(best[2]) < 16:
                    best[2].add(state)
                bound = ents[e][0]
                pending, i = [], nxt[m]
                while i != e:
                    pending.append(ops[opn[i]])
                    i = nxt[i]
                cands = index.candidates(state, pending, ulin, bound)
                pos = 0
                continue
        else:
            if pos < len(cands):
                u = cands[pos]
                pos += 1
                steps += 1
                if steps > budget:
                    return Outcome("budget", steps, best)
                o = unk[u]
                ns = step(state, o) if needed(o) else BAD
                nu = ulin | (1 << u)
                if ns is not BAD and ns != state and not explored(lin, ns, state, nu):
                    stack.append((-1, state, obs, False, u, cands, pos))
                    state, ulin, obs = ns, nu, state
                    e, cands = nxt[m], None
                    continue
                continue
        while True:  # undo choices up to the last one that has alternatives
            if not stack:
                return Outcome("fail", steps, best)
            c, state, obs, forced, u, cands, pos = stack.pop()
            if u >= 0:
                ulin &= ~(1 << u)
            else:
                lin ^= zobrist[opn[c]]
                relink(match[c])
                relink(c)
            if not forced:
                break
        if u < 0:
            e = nxt[c]


def cut_points(ops):
    """Indices i (into ops, sorted by invocation) where every completed op before i returned
    before op i was invoked; 0 and len(ops) always count. A window [a, b) between cut points can
    be checked on its own (see shrink_window)."""
    cuts = [0]
    last_ret = -INF
    for i, o in enumerate(ops):
        if i and last_ret < o.invoke:
            cuts.append(i)
        if o.ret != INF:
            last_ret = max(last_ret, o.ret)
    cuts.append(len(ops))
    return cuts


def window_ops(ops, a, b):
    """Ops of the window [a, b) plus the unknown-outcome ops invoked before a (they may still
    take effect inside the window), renumbered from 0. Returns (list, original ops by new n)."""
    sel = [o for o in ops[:a] if o.ret == INF] + ops[a:b]
    copies = []
    for i, o in enumerate(sel):
        c = Op.__new__(Op)
        for f in Op.__slots__:
            setattr(c, f, getattr(o, f))
        c.n = i
        copies.append(c)
    return copies, sel


def start_states(ops, a, win):
    """States the register may hold at cut a: absent, or any value written before a. Values the
    window never reads or expects behave alike, so one stand-in (OTHER) covers them."""
    if a == 0:
        return [None]
    mentioned = set()
    for o in win:
        if o.kind == "get" and o.result == OK:
            mentioned.add(o.read)
        if o.kind == "cas":
            mentioned.add(o.expect)
    states, other = [None], False
    for o in ops[:a]:
        if o.kind in WRITES and o.result != PF and o.result != NF:
            if o.value in mentioned:
                if o.value not in states:
                    states.append(o.value)
            else:
                other = True
    if other:
        states.append(OTHER)
    return states


def window_fails(ops, a, b, left, zobrist):
    """True when the window [a, b) is not linearizable from any state the register may hold at
    cut a (so the whole history is not either); also the search outcome that got furthest.
    The searches spend from left[0]; one that runs out counts as not failing."""
    win, _ = window_ops(ops, a, b)
    deepest = None
    for s in start_states(ops, a, win):
        res = search(win, s, left[0], zobrist)
        left[0] -= res.steps
        if res.status != "fail":
            return False, res
        if deepest is None or res.best[0] > deepest.best[0]:
            deepest = res
    return True, deepest


def shrink_window(ops, whole, budget, zobrist):
    """The smallest window between cut points that still fails, found by two binary searches:
    the first end cut b whose prefix [0, b) fails (a prefix of a linearizable history ending at a
    cut point is linearizable, so this is monotone), then the last start cut a whose window
    [a, b) fails from every state possible at a (sound: a linearization of the whole history
    puts every op before a before every op after it, leaving the register in one of those
    states). whole: the failed search of all ops. All tries together spend at most budget steps;
    when it runs out the smallest window found so far is kept.
    Returns (a, b, outcome of the failing window, True if the budget ran out)."""
    cuts = cut_points(ops)
    left = [budget]
    lo, hi, out = 1, len(cuts) - 1, whole  # cuts[hi] = len(ops)
    while lo < hi and left[0] > 0:
        mid = (lo + hi) // 2
        bad, o = window_fails(ops, 0, cuts[mid], left, zobrist)
        if bad:
            hi, out = mid, o
        else:
            lo = mid + 1
    b = cuts[hi]
    lo, hi = 0, hi - 1
    while lo < hi and left[0] > 0:
        mid = (lo + hi + 1) // 2
        bad, o = window_fails(ops, cuts[mid], b, left, zobrist)
        if bad:
            lo, out = mid, o
        else:
            hi = mid - 1
    return cuts[lo], b, out, left[0] <= 0


def fmt_state(s):
    if s is None:
        return "absent"
    if s == OTHER:
        return "an older value"
    return repr(s)


def check_key(key, ops, budget, zobrist, out):
    """Check one key, print its verdict (and the failing window). Returns "ok"/"fail"/"budget"."""
    nunk = sum(1 for o in ops if o.ret == INF)
    res = search(ops, None, budget, zobrist)
    if res.status == "ok":
        print("key %s: linearizable (%d ops, %d of unknown outcome, %d search steps)"
              % (key, len(ops), nunk, res.steps), file=out)
        return "ok"
    if res.status == "budget":
        print("key %s: too large: gave up after %d search steps (--budget) on %d ops, %d of "
              "unknown outcome; deepest partial linearization had %d ops"
              % (key, budget, len(ops), nunk, res.best[0]), file=out)
        return "budget"
    a, b, wres, cut_short = shrink_window(ops, res, budget, zobrist)
    win, orig = window_ops(ops, a, b)
    t0 = ops[0].invoke
    print("key %s: NOT linearizable (%d ops, %d of unknown outcome, %d search steps)"
          % (key, len(ops), nunk, res.steps), file=out)
    print("  %s failing window found: ops %d..%d of the key (%d ops%s), starting from "
          "register state %s" % ("smallest" if not cut_short else
                                 "shrinking ran out of budget; smallest", a, b - 1, b - a,
                                 " + %d earlier unknown-outcome ops" % (len(win) - (b - a))
                                 if len(win) > b - a else "",
                                 " or ".join(fmt_state(s) for s in start_states(ops, a, win))),
          file=out)
    depth, blocker, states = wres.best
    if blocker is not None:
        stuck = orig[blocker.n]
        print("  no order of these ops is legal; the search got furthest (%d ops linearized) "
              "with register state %s and could not place:" % (
                  depth, " or ".join(sorted(fmt_state(s) for s in states))), file=out)
        print("    " + stuck.describe(t0), file=out)
    print("  window (times in ms from the key's first op; '...' = unknown outcome):", file=out)
    inside = orig[len(win) - (b - a):]
    mentioned = {o.read for o in inside if o.kind == "get"} | {o.expect for o in inside}
    hidden = 0
    for o in orig:
        if o.n < a and o.value not in mentioned:
            hidden += 1  # an earlier unknown op whose value the window never names
            continue
        print("    " + o.describe(t0), file=out)
    if hidden:
        print("    (and %d earlier ops of unknown outcome whose values the window never names)"
              % hidden, file=out)
    return "fail"


def summarize(raw):
    """ok/failed/unknown counts per op kind, over every record (also the dropped ones)."""
    counts = {}
    for rec in raw:
        k = counts.setdefault(rec["op"], {})
        k[rec["result"]] = k.get(rec["result"], 0) + 1
    parts = []
    for kind in sorted(counts):
        parts.append("%s %s" % (kind, " ".join("%s=%d" % (r, n)
                                                for r, n in sorted(counts[kind].items()))))
    return "; ".join(parts)


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("history", help="JSON-lines history file ('-' for standard input)")
    ap.add_argument("--budget", type=int, default=5000000,
                    help="search steps allowed per key (and per shrinking try)")
    ap.add_argument("--seed", type=int, default=1, help="seed of the Zobrist words")
    args = ap.parse_args(argv)
    try:
        if args.history == "-":
            lines = sys.stdin.read().splitlines()
        else:
            with open(args.history, encoding="utf-8") as f:
                lines = f.read().splitlines()
        keys = parse(lines)
    except (OSError, BadInput) as e:
        print("lincheck: bad input: %s" % e, file=sys.stderr)
        return 2
    raw = [json.loads(t) for t in lines if t.strip()]
    print("history: %d ops on %d keys: %s" % (len(raw), len(keys), summarize(raw)))
    rng = random.Random(args.seed)
    nmax = max((len(v) for v in keys.values()), default=0)
    zobrist = [rng.getrandbits(128) for _ in range(nmax)]
    verdicts = {}
    for key in sorted(keys):
        v = check_key(key, keys[key], args.budget, zobrist, sys.stdout)
        verdicts[v] = verdicts.get(v, 0) + 1
    print("lincheck: %d keys linearizable, %d not linearizable, %d too large"
          % (verdicts.get("ok", 0), verdicts.get("fail", 0), verdicts.get("budget", 0)))
    if verdicts.get("fail"):
        return 1
    if verdicts.get("budget"):
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
