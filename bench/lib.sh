# Shared by the bench/ scripts; source it after `set -euo pipefail`:
#   . "$here/lib.sh"
# It makes $tmp (a directory removed on exit), kills on exit every process
# whose pid was added to pids, and defines free_port and wait_port.
tmp=$(mktemp -d /tmp/tlsgate-bench.XXXXXX)
pids=()
bench_cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$tmp"
}
trap bench_cleanup EXIT

# free_port: a TCP port on 127.0.0.1 nothing listens on (now).
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# wait_port PORT: until something accepts on 127.0.0.1:PORT (10 s at most); 1 if never.
wait_port() {
    for _ in $(seq 1 200); do
        (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0
        sleep 0.05
    done
    return 1
}
