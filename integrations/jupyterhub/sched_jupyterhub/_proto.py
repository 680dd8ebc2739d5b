"""The generated stubs (sched_jupyterhub/proto), with a clear error when they are missing."""
try:
    from .proto import common_pb2, operator_pb2, operator_pb2_grpc, scheduler_pb2, scheduler_pb2_grpc  # noqa: F401
except ImportError as e:  # pragma: no cover - depends on the installation
    raise ImportError(
        "sched_jupyterhub's gRPC stubs are missing or stale (" + str(e) + "): run "
        "'/usr/bin/python3 -m sched_jupyterhub.stubs --protos PATH/TO/protos' once after installing "
        "(needs protobuf-compiler and protobuf-compiler-grpc)") from e
