#!/usr/bin/env python3
"""Functions in src/ (outside test modules) longer than a limit, longest first.
Usage: long_functions.py [limit] [root]; exits 1 when any is longer than the limit."""
import os, re, sys

limit = int(sys.argv[1]) if len(sys.argv) > 1 else 80
root = sys.argv[2] if len(sys.argv) > 2 else 'src'
fn_re = re.compile(r'^\s*(pub(\([^)]*\))?\s+)?(const\s+)?(async\s+)?(unsafe\s+)?(extern\s+"C"\s+)?fn\s+(\w+)')
found = []
for d, _, files in os.walk(root):
    for f in files:
        if not f.endswith('.rs'):
            continue
        path = os.path.join(d, f)
        lines = open(path).read().split('\n')
        # stop at the test module
        for i, l in enumerate(lines):
            if l.startswith('#[cfg(test)]'):
                lines = lines[:i]
                break
        i = 0
        while i < len(lines):
            m = fn_re.match(lines[i])
            if not m:
                i += 1
                continue
            # find the opening brace of the body (skip declarations ending in ';')
            j, depth, started = i, 0, False
            while j < len(lines):
                code = re.sub(r'//.*', '', lines[j])
                code = re.sub(r'"(\\.|[^"\\])*"', '""', code)
                if not started and ';' in code and '{' not in code and j > i:
                    break
                for ch in code:
                    if ch == '{':
                        depth += 1
                        started = True
                    elif ch == '}':
                        depth -= 1
                if started and depth <= 0:
                    break
                j += 1
            if started:
                n = j - i + 1
                if n > limit:
                    found.append((n, f'{path}:{i + 1}', m.group(7)))
            i += 1
found.sort(reverse=True)
for n, where, name in found:
    print(f'{n:4} {where} {name}')
sys.exit(1 if found else 0)
