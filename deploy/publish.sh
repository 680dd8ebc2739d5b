#!/usr/bin/env bash
# Publishes schedctl (master, agent, CLI in one binary) as a self-contained single file.
# Usage: deploy/publish.sh [RID] (default linux-x64) → artifacts/schedctl-RID/schedctl
set -euo pipefail
cd "$(dirname "$0")/.."
rid=${1:-linux-x64}
dotnet publish src/Cli -c Release -r "$rid" --self-contained -p:PublishSingleFile=true \
  -o "artifacts/schedctl-$rid"
echo "published artifacts/schedctl-$rid/schedctl"
