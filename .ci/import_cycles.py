#!/usr/bin/env python3
"""Import cycles between the modules of src/ (`crate::` and `super::` paths outside test
modules), at every depth of the module tree: `digests` -> `store` at depth 1,
`digests::ranking` -> `digests::render` at depth 2, and so on. Exits 1 when there is one.
Usage: import_cycles.py [src] [max depth]"""
import os, re, sys
from collections import defaultdict
root = sys.argv[1] if len(sys.argv) > 1 else 'src'
max_depth = int(sys.argv[2]) if len(sys.argv) > 2 else 6
def modpath(f):
    p = os.path.relpath(f, root)[:-3].split('/')
    if p[-1] == 'mod': p = p[:-1]
    if p == ['lib'] or p == ['main']: return []
    return p
edges = defaultdict(set)
for d, _, fs in os.walk(root):
    for f in fs:
        if not f.endswith('.rs'): continue
        full = os.path.join(d, f)
        me = modpath(full)
        src = open(full).read()
        # cut test modules
        src = re.split(r'#\[cfg\(test\)\]\s*mod tests', src)[0]
        for m in re.finditer(r'crate::((?:\w+::)*\w+)', src):
            tgt = m.group(1).split('::')
            edges[tuple(me)].add(tuple(tgt))
        for m in re.finditer(r'\b(super(?:::super)*)::((?:\w+::)*\w+)', src):
            ups = m.group(1).count('super')
            base = me[:-ups] if ups <= len(me) else []
            edges[tuple(me)].add(tuple(base + m.group(2).split('::')))
# resolve to module granularity `depth`: find existing module prefix
mods = set()
for d, _, fs in os.walk(root):
    for f in fs:
        if f.endswith('.rs'): mods.add(tuple(modpath(os.path.join(d, f))))
def resolve(path):
    for i in range(len(path), 0, -1):
        if tuple(path[:i]) in mods: return tuple(path[:i])
    return None
def cycles(depth):
    g = defaultdict(set)
    for a, ts in edges.items():
        A = a[:depth]
        for t in ts:
            r = resolve(list(t))
            if r is None: continue
            B = r[:depth]
            if A and B and A != B and not (A[:len(B)] == B or B[:len(A)] == A):
                g[A].add(B)
    # tarjan
    idx = {}; low = {}; st = []; on = set(); sccs = []; c = [0]
    sys.setrecursionlimit(10000)
    def sc(v):
        idx[v] = low[v] = c[0]; c[0] += 1; st.append(v); on.add(v)
        for w in g.get(v, ()):
            if w not in idx: sc(w); low[v] = min(low[v], low[w])
            elif w in on: low[v] = min(low[v], idx[w])
        if low[v] == idx[v]:
            comp = []
            while True:
                w = st.pop(); on.discard(w); comp.append(w)
                if w == v: break
            if len(comp) > 1: sccs.append(comp)
    for v in list(g):
        if v not in idx: sc(v)
    for comp in sccs:
        names = sorted('::'.join(x) for x in comp)
        print('cycle:', ', '.join(names))
        for a in comp:
            for b in g[a]:
                if b in comp: print('   ', '::'.join(a), '->', '::'.join(b))
    return len(sccs)

found = sum(cycles(d) for d in range(1, max_depth + 1))
print(found, 'import cycles')
sys.exit(1 if found else 0)
