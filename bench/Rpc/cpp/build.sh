#!/bin/sh
# Builds the reference C++ gRPC echo server. Usage: build.sh PROTO_ROOT OUT_DIR
# Needs Debian's libgrpc++-dev, protobuf-compiler and protobuf-compiler-grpc.
set -eu
PROTO_ROOT=$1
OUT=$2
HERE=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$OUT/gen"
PLUGIN=$(command -v grpc_cpp_plugin) || { echo "grpc_cpp_plugin not found (apt-get install protobuf-compiler-grpc)" >&2; exit 3; }
pkg-config --exists grpc++ protobuf || { echo "pkg-config cannot find grpc++/protobuf (apt-get install libgrpc++-dev libprotobuf-dev pkg-config)" >&2; exit 3; }
protoc -I "$PROTO_ROOT" --cpp_out="$OUT/gen" --grpc_out="$OUT/gen" --plugin=protoc-gen-grpc="$PLUGIN" "$PROTO_ROOT"/sched/v1/*.proto
# shellcheck disable=SC2046
g++ -O2 -std=c++17 -o "$OUT/echo_server" -I "$OUT/gen" "$HERE/echo_server.cc" \
  "$OUT"/gen/sched/v1/*.pb.cc \
  $(pkg-config --cflags --libs grpc++ protobuf) -lpthread
echo "$OUT/echo_server"
