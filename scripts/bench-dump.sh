#!/usr/bin/env bash
# vmcore reader benchmark (BENCHMARKS.md, "vmcore reader"): lockscope-dump-bench, then the
# peers on the same files and the same page picks: libkdumpfile (python3-libkdumpfile), drgn
# 0.3.0 and crash 8.0.2, whichever are installed. Optional: VMLINUX=path to the DWARF vmlinux
# of the corpus kernel for crash (see shared/corpus/README.md); RUNS_ONLY=open|reads|codecs|sparse.
#   apt-get install python3-libkdumpfile crash; pip install drgn==0.3.0
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED=${LOCKSCOPE_SHARED:-$(cd .. && pwd)/shared}
TMP=${TMPDIR:-/tmp}/lockscope-dump-bench
CASE=$SHARED/corpus/ipi_sleeping_holder.live
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2-), commit $(git rev-parse --short HEAD)$(git diff --quiet || echo ' + working tree')"
cargo build --release -q -p lockscope-bench -p lockscope
./target/release/lockscope-dump-bench --shared "$SHARED" --tmp "$TMP" --keep ${RUNS_ONLY:+--only "$RUNS_ONLY"}

files=(
  "kdump zlib -d 31=$CASE/vmcore.mkd-zlib-d31"
  "kdump lzo -d 31=$CASE/vmcore.mkd-lzo-d31"
  "kdump snappy -d 31=$TMP/vmcore.snappy-d31"
  "kdump zstd -d 31=$TMP/vmcore.zstd-d31"
  "ELF -d 31=$TMP/vmcore.mkd-elf-d31"
  "ELF full (QEMU)=$TMP/vmcore.qemu-elf"
  "kdump zstd full=$TMP/vmcore.zstd-full"
  "kdump snappy full=$TMP/vmcore.snappy-full"
  "kdump zstd full, split in 3=$TMP/vmcore.zstd-split.1,$TMP/vmcore.zstd-split.2,$TMP/vmcore.zstd-split.3"
  "kdump zlib full, flattened (QEMU)=$CASE/vmcore.qemu-kdump-zlib"
)
echo
echo "### Peers (median of 21 opens; 20 000 random reads; every PFN in order; Python's cost per call on a cached page)"
echo
echo "| peer | file | open (µs) | random 4 KiB reads/s | sequential scan MB/s | µs per call, cached |"
echo "|---|---|---:|---:|---:|---:|"
if /usr/bin/python3 -c 'import kdumpfile' 2>/dev/null; then
  /usr/bin/python3 scripts/bench-dump-peers.py kdumpfile "$CASE/vmcore.mkd-zlib-d31" "${files[@]}"
fi
if python3 -c 'import drgn' 2>/dev/null; then
  python3 scripts/bench-dump-peers.py drgn "$CASE/vmcore.mkd-zlib-d31" "${files[@]}"
fi

if command -v crash >/dev/null && [ -n "${VMLINUX:-}" ] && [ -f "$VMLINUX" ]; then
  # 2000 random 4 KiB physical reads of pages the -d 31 dump holds, as crash commands.
  cmds=$TMP/crash-reads.cmd
  /usr/bin/python3 - "$CASE/vmcore.mkd-zlib-d31" > "$cmds" <<'EOF'
import sys, kdumpfile
k = kdumpfile.kdumpfile(sys.argv[1])
dumped = []
for pfn in range(0xC000):
    try:
        k.read(kdumpfile.KDUMP_MACHPHYSADDR, pfn * 4096, 4096); dumped.append(pfn)
    except Exception:
        pass
s = 0x9E3779B97F4A7C15; m = (1 << 64) - 1
for _ in range(2000):
    s ^= (s << 13) & m; s ^= s >> 7; s ^= (s << 17) & m
    print(f"rd -p -64 {dumped[s % len(dumped)] * 4096:#x} 512 > /dev/null")
print("q")
EOF
  echo
  echo "### crash 8.0.2 (with the DWARF vmlinux; best of 3)"
  echo
  echo "| file | start to prompt (s) | start + 2000 random 4 KiB \`rd -p\` (s) | reads/s |"
  echo "|---|---:|---:|---:|"
  for f in "$CASE/vmcore.mkd-zlib-d31" "$CASE/vmcore.mkd-lzo-d31" "$TMP/vmcore.snappy-d31" "$TMP/vmcore.zstd-d31" "$TMP/vmcore.qemu-elf" "$CASE/vmcore.qemu-kdump-zlib"; do
    best() { local b=999; for _ in 1 2 3; do local t0; t0=$(date +%s.%N); "$@" >/dev/null 2>&1 || true; b=$(echo "$b $(date +%s.%N) $t0" | awk '{d=$2-$3; print (d<$1)?d:$1}'); done; echo "$b"; }
    open=$(best sh -c "echo q | crash -s '$VMLINUX' '$f'")
    reads=$(best crash -s -i "$cmds" "$VMLINUX" "$f")
    echo "| $(basename "$f") | $open | $reads | $(echo "$open $reads" | awk '{d=$2-$1; if (d>0) printf "%.0f", 2000/d; else print "–"}') |"
  done
fi
