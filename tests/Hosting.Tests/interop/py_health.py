"""A grpcio health client (grpc_health.v1) checking our server's grpc.health.v1.Health service.

Usage: py_health.py HOST:PORT SERVICE=EXPECTED...
EXPECTED is a HealthCheckResponse.ServingStatus name, or NOT_FOUND for a service the server does
not know. Prints one line per check: `ok SERVICE` or `FAIL SERVICE: reason`.
"""
import sys

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

channel = grpc.insecure_channel(sys.argv[1])
stub = health_pb2_grpc.HealthStub(channel)

for check in sys.argv[2:]:
    service, expected = check.rsplit("=", 1)
    try:
        status = health_pb2.HealthCheckResponse.ServingStatus.Name(
            stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=10).status)
    except grpc.RpcError as e:
        status = e.code().name
    if status == expected:
        print("ok " + service, flush=True)
    else:
        print("FAIL %s: expected %s, got %s" % (service, expected, status), flush=True)
