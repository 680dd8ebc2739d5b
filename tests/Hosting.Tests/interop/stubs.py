"""Generates Python stubs for protos/sched/v1 into a directory and makes them importable.

The stdlib has a module named `sched`, so the generated package directory goes FIRST on sys.path
and gets explicit __init__.py files.
"""
import os
import subprocess
import sys


def load(stub_dir, proto_root=None):
    if proto_root is not None and not os.path.exists(os.path.join(stub_dir, "sched", "v1", "agent_pb2.py")):
        generate(stub_dir, proto_root)
    sys.path.insert(0, stub_dir)
    for name in [n for n in sys.modules if n == "sched" or n.startswith("sched.")]:
        del sys.modules[name]


def generate(stub_dir, proto_root):
    os.makedirs(stub_dir, exist_ok=True)
    protos = sorted(
        os.path.join(proto_root, "sched", "v1", f)
        for f in os.listdir(os.path.join(proto_root, "sched", "v1"))
        if f.endswith(".proto")
    )
    plugin = subprocess.check_output(["which", "grpc_python_plugin"]).decode().strip()
    subprocess.check_call([
        "protoc", "-I", proto_root, "--python_out=" + stub_dir, "--grpc_out=" + stub_dir,
        "--plugin=protoc-gen-grpc=" + plugin,
    ] + protos)
    for d in ("sched", os.path.join("sched", "v1")):
        open(os.path.join(stub_dir, d, "__init__.py"), "a").close()
