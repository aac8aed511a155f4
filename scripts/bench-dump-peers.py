#!/usr/bin/env python3
"""Times libkdumpfile (its Python bindings) or drgn (0.3.0; libkdumpfile inside for kdump files,
its own reader for ELF) on the same dumps and the same page picks as `lockscope-dump-bench`:
open time (median of 21), 20 000 random 4 KiB physical reads of pages the -d 31 dump holds
(same xorshift sequence), and a sequential read of every PFN. Prints Markdown rows.

Usage: python3 bench-dump-peers.py kdumpfile|drgn REFERENCE_ZLIB_D31 NAME=PATH[,PATH...]...
Run the kdumpfile peer with Debian's /usr/bin/python3 (python3-libkdumpfile), drgn with the
Python that has `pip install drgn==0.3.0`.
"""
import statistics
import sys
import time

PAGE = 4096


class Xorshift:
    def __init__(self, seed):
        self.s = seed

    def next(self):
        m = (1 << 64) - 1
        self.s ^= (self.s << 13) & m
        self.s ^= self.s >> 7
        self.s ^= (self.s << 17) & m
        return self.s


def opener(peer):
    if peer == "kdumpfile":
        import kdumpfile

        def open_(paths):
            return kdumpfile.kdumpfile(*paths) if len(paths) > 1 else kdumpfile.kdumpfile(paths[0])

        def read(k, addr):
            return k.read(kdumpfile.KDUMP_MACHPHYSADDR, addr, PAGE)

        return open_, read
    import drgn

    def open_(paths):
        if len(paths) > 1:
            raise RuntimeError("drgn opens one core file")
        p = drgn.Program()
        p.set_core_dump(paths[0])
        return p

    def read(p, addr):
        return p.read(addr, PAGE, True)

    return open_, read


def main():
    peer, ref = sys.argv[1], sys.argv[2]
    open_, read = opener(peer)
    # The pages every format has: those the -d 31 dump holds (found with the peer itself).
    r = open_([ref])
    dumped = []
    for pfn in range(0xC000):
        try:
            read(r, pfn * PAGE)
            dumped.append(pfn)
        except Exception:
            pass
    print(f"| {peer}: pages in the -d 31 dump | {len(dumped)} | | | |")
    for arg in sys.argv[3:]:
        name, paths = arg.split("=", 1)
        paths = paths.split(",")
        try:
            times = []
            for _ in range(22):
                t = time.perf_counter()
                d = open_(paths)
                times.append(time.perf_counter() - t)
                del d
            open_us = statistics.median(times[1:]) * 1e6
        except Exception as e:
            print(f"| {peer} | {name} | cannot open: {str(e).splitlines()[0][:90]} | | |")
            continue
        d = open_(paths)
        rng = Xorshift(0x9E3779B97F4A7C15)
        n = 20000
        ok = 0
        t = time.perf_counter()
        for _ in range(n):
            pfn = dumped[rng.next() % len(dumped)]
            try:
                read(d, pfn * PAGE)
                ok += 1
            except Exception:
                pass
        random_rate = n / (time.perf_counter() - t)
        d = open_(paths)
        pages = 0
        t = time.perf_counter()
        for pfn in range(0xC000):
            try:
                read(d, pfn * PAGE)
                pages += 1
            except Exception:
                pass
        scan = pages * PAGE / 1e6 / (time.perf_counter() - t)
        # Python's own cost per call: the same page again and again (a cache hit in the peer).
        t = time.perf_counter()
        for _ in range(20000):
            read(d, dumped[0] * PAGE)
        call_us = (time.perf_counter() - t) / 20000 * 1e6
        miss = f" ({n - ok} random pages not in this file)" if ok < n else ""
        print(f"| {peer} | {name}{miss} | {open_us:.0f} | {random_rate:.0f} | {scan:.0f} ({pages} pages) | {call_us:.1f} |")


if __name__ == "__main__":
    main()
