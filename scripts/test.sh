#!/usr/bin/env bash
# Tests every module of the repository: the root module and the nested
# modules (benchmarks/, redismeter/), which `go test ./...` at the root does
# not reach. The redismeter tests start redis-server from PATH.
set -euo pipefail
cd "$(dirname "$0")/.."

modules=(. benchmarks redismeter)

fail=0
# A file gofmt cannot parse is a failure too (one that only another
# platform builds would otherwise go unnoticed: go vet here skips it).
if ! listed=$(gofmt -l .); then
	echo "gofmt could not read every file"
	fail=1
fi
unformatted=$(printf '%s' "$listed" | grep -v '^vendor/' || true)
if [ -n "$unformatted" ]; then
	echo "gofmt -l lists unformatted files:"
	echo "$unformatted"
	fail=1
fi

for m in "${modules[@]}"; do
	echo "== $m: go vet"
	(cd "$m" && go vet ./...) || fail=1
	echo "== $m: go test -race"
	(cd "$m" && go test -race -shuffle=on -count=1 ./...) || fail=1
	echo "== $m: benchmarks compile and run (no timings asserted)"
	(cd "$m" && go test -run '^$' -bench . -benchtime 100x ./...) || fail=1
done

echo "== benchmarks: the comparison runs, at its smallest (no timings asserted)"
(cd benchmarks && go run ./cmd/compare -quick -rounds 1 -items 2000) || fail=1

exit "$fail"
