# Sourced by the scripts/bench-*.sh: the release build, the machine line, and `measure CMD…`
# (median wall seconds of $runs runs and the peak RSS of the last, as "0.040 s  21 MiB").
cargo build --release --quiet -p lockscope
lockscope=./target/release/lockscope
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'); commit $(git describe --always --dirty)"

measure() {
  local times=() rss=0 out tf
  tf=$(mktemp /tmp/bench-time.XXXX)
  for _ in $(seq "$runs"); do
    /usr/bin/time -o "$tf" -f "%e %M" "$@" > /dev/null 2>&1 || true
    out=$(tail -1 "$tf")
    times+=("${out% *}"); rss=${out#* }
  done
  rm -f "$tf"
  printf '%s\n' "${times[@]}" | sort -n | awk -v r="$rss" '{a[NR]=$1} END {printf "%.3f s  %d MiB", a[int((NR+1)/2)], r/1024}'
}
