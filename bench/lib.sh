# Shared by the benchmark scripts: `source bench/lib.sh`.

# wrk prints latency percentiles as 812.00us, 3.21ms or 1.02s: this gives milliseconds.
#   percentile 99% wrk-output.txt
percentile() {
  awk -v p="$1" '$1 == p {
    v = $2; u = v; sub(/[0-9.]+/, "", u); sub(/[a-z]+$/, "", v)
    printf "%.2f", v * (u == "us" ? 0.001 : u == "s" ? 1000 : u == "m" ? 60000 : 1)
  }' "$2"
}
