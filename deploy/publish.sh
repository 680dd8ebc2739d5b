#!/usr/bin/env bash
# Publishes schedctl (master, agent, CLI in one binary) as a self-contained single file, with the
# native task supervisor (sched-supervisor, built with gcc) beside it: install both in one directory.
# Usage: deploy/publish.sh [RID] (default linux-x64) → artifacts/schedctl-RID/{schedctl,sched-supervisor}
set -euo pipefail
cd "$(dirname "$0")/.."
rid=${1:-linux-x64}
dotnet publish src/Cli -c Release -r "$rid" --self-contained -p:PublishSingleFile=true \
  -o "artifacts/schedctl-$rid"
test -x "artifacts/schedctl-$rid/sched-supervisor" || { echo "publish: sched-supervisor missing from artifacts/schedctl-$rid" >&2; exit 1; }
echo "published artifacts/schedctl-$rid/schedctl and artifacts/schedctl-$rid/sched-supervisor"
