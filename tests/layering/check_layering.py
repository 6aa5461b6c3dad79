#!/usr/bin/env python3
"""Fails when a file under src/<module>/ includes a header of a module DESIGN.md does not allow.

The same table is written as target_link_libraries in src/CMakeLists.txt; this check also
catches header-only reaches that a link would not notice.
"""
import os
import re
import sys

ALLOWED = {
    "base": set(),
    "gguf": {"base"},
    "tensor": {"base"},
    "kernels": {"tensor", "base"},
    "model": {"kernels", "tensor", "gguf", "base"},
    "tokenizer": {"gguf", "base"},
    "sampling": {"base"},
    "metrics": {"base"},
    "runtime": {"model", "tokenizer", "sampling", "metrics", "base"},
    "store": {"runtime", "gguf", "metrics", "base"},
    "api": {"store", "runtime", "metrics", "base", "lightboat"},
    "server": {"lightboat", "metrics", "base"},
    "cli": {"lightboat", "server", "store", "gguf", "tokenizer", "model", "kernels", "sampling", "tensor", "base"},
}
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"/]+)/')


def main(src):
    problems = []
    for module in sorted(os.listdir(src)):
        mdir = os.path.join(src, module)
        if not os.path.isdir(mdir):
            continue
        if module not in ALLOWED:
            problems.append("src/%s/: a module missing from the layering table" % module)
            continue
        for root, _dirs, files in os.walk(mdir):
            for f in files:
                if not f.endswith((".h", ".cpp")):
                    continue
                path = os.path.join(root, f)
                for n, line in enumerate(open(path, encoding="utf-8"), 1):
                    m = INCLUDE.match(line)
                    if m and m.group(1) != module and m.group(1) not in ALLOWED[module]:
                        problems.append("%s:%d includes %s/, which %s/ may not use" %
                                        (os.path.relpath(path, src), n, m.group(1), module))
    for p in problems:
        print(p)
    print("layering: %d problem(s)" % len(problems))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
