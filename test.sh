#!/usr/bin/env bash
# Installs what the tests need (Debian packages, when run as root and missing), builds the
# solution once, then runs every test project in turn and prints one closing summary line.
# Usage: ./test.sh [extra dotnet test args, e.g. --filter Category!=Slow]
set -euo pipefail
cd "$(dirname "$0")"

APT_PACKAGES=(gcc libc6-dev etcd-server runc crun umoci skopeo busybox-static python3-grpcio python3-protobuf
  protobuf-compiler protobuf-compiler-grpc libgrpc++-dev libprotobuf-dev pkg-config prometheus
  jupyterhub jupyter-notebook)

install_packages() {
  local missing=()
  for p in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -eq 0 ]; then return 0; fi
  if [ "$(id -u)" -ne 0 ]; then
    echo "test.sh: missing Debian packages: ${missing[*]} (run as root to install them; tests needing them will say so)" >&2
    return 0
  fi
  echo "test.sh: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}
install_packages

export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1
results=$(mktemp -d /tmp/sched-test-results.XXXXXX)
trap 'rm -rf "$results"' EXIT

echo "== build"
dotnet build Scheduler.sln -c Release --nologo -v q -clp:NoSummary

status=0
for proj in tests/*/*.Tests.csproj; do
  name=$(basename "$proj" .csproj)
  echo "== $name"
  if ! dotnet test "$proj" -c Release --no-build --nologo \
      --logger "trx;LogFileName=$name.trx" --results-directory "$results" \
      --blame-hang-timeout 8m "$@"; then
    status=1
  fi
done

# One closing line for the whole suite: "N passed, N failed, N skipped".
python3 - "$results" <<'PY'
import sys, glob, xml.etree.ElementTree as ET
p = f = s = 0
for path in glob.glob(sys.argv[1] + "/*.trx"):
    c = ET.parse(path).getroot().find(".//{*}ResultSummary/{*}Counters")
    if c is None:
        continue
    p += int(c.get("passed", 0)); f += int(c.get("failed", 0)) + int(c.get("error", 0)) + int(c.get("timeout", 0)) + int(c.get("aborted", 0))
    # A skipped test is counted in total but not in executed (its notExecuted counter stays 0).
    s += int(c.get("total", 0)) - int(c.get("executed", 0))
print(f"{p} passed, {f} failed, {s} skipped")
PY
exit $status
