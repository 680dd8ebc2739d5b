"""A framework written directly against protos/ with grpcio (no SDK).

Usage: hello_framework.py STUB_DIR MASTER_HOST:PORT
With SCHED_TLS_CA (a CA file) it connects over TLS trusting that CA; with SCHED_TOKEN it presents
the token as standard `authorization: Bearer TOKEN` metadata on every call.
Checks the master with Operator.GetHealth, subscribes, launches one task on the first offer that fits, acknowledges every status update
that carries a uuid, and tears the framework down once the task finished.
"""
import os
import sys
import uuid

sys.path.insert(0, sys.argv[1])  # the generated stubs first: the stdlib has a module named sched

import grpc  # noqa: E402
from sched.v1 import common_pb2, operator_pb2, operator_pb2_grpc, scheduler_pb2, scheduler_pb2_grpc  # noqa: E402

master = sys.argv[2]
ca_file, token = os.environ.get("SCHED_TLS_CA"), os.environ.get("SCHED_TOKEN")
if ca_file:
    with open(ca_file, "rb") as f:
        credentials = grpc.ssl_channel_credentials(root_certificates=f.read())
    if token:
        credentials = grpc.composite_channel_credentials(credentials, grpc.access_token_call_credentials(token))
    channel = grpc.secure_channel(master, credentials)
else:
    channel = grpc.insecure_channel(master)
health = operator_pb2_grpc.OperatorStub(channel).GetHealth(operator_pb2.GetHealthRequest(), timeout=10)
if not health.healthy:
    sys.exit(f"master {master} reports unhealthy: {health}")
print(f"master healthy ({health.role}, version {health.version})", flush=True)
stub = scheduler_pb2_grpc.SchedulerStub(channel)
info = common_pb2.FrameworkInfo(name="python-hello", roles=["python"], failover_timeout_seconds=0)
task_id = "py-" + uuid.uuid4().hex[:8]
framework_id = stream_id = None
launched = False


def scalar(resources, name):
    return sum(r.scalar for r in resources if r.name == name and r.WhichOneof("value") == "scalar")


for event in stub.Subscribe(scheduler_pb2.SubscribeRequest(framework_info=info), timeout=60):
    kind = event.WhichOneof("event")
    if kind == "subscribed":
        framework_id, stream_id = event.subscribed.framework_id, event.subscribed.stream_id
        print("subscribed", framework_id, flush=True)
    elif kind == "offers":
        for offer in event.offers.offers:
            if not launched and scalar(offer.resources, "cpus") >= 0.1 and scalar(offer.resources, "mem") >= 32:
                task = common_pb2.TaskInfo(
                    task_id=task_id, name="py", agent_id=offer.agent_id,
                    resources=[common_pb2.Resource(name="cpus", scalar=0.1, allocation_role=offer.role),
                               common_pb2.Resource(name="mem", scalar=32, allocation_role=offer.role)],
                    command=common_pb2.CommandInfo(shell=True, value="echo hello from python"))
                launch = scheduler_pb2.Operation(launch=scheduler_pb2.Operation.Launch(tasks=[task]))
                stub.Accept(scheduler_pb2.AcceptRequest(framework_id=framework_id, stream_id=stream_id,
                                                        offer_ids=[offer.id], operations=[launch]), timeout=10)
                launched = True
                print("launched", task_id, "on", offer.agent_id, flush=True)
            else:
                stub.Decline(scheduler_pb2.DeclineRequest(framework_id=framework_id, stream_id=stream_id,
                                                          offer_ids=[offer.id]), timeout=10)
    elif kind in ("update", "updates"):
        statuses = [event.update.status] if kind == "update" else list(event.updates.statuses)
        for status in statuses:
            print("update", status.task_id, common_pb2.TaskState.Name(status.state), flush=True)
            if status.uuid:
                stub.Acknowledge(scheduler_pb2.AcknowledgeRequest(
                    framework_id=framework_id, stream_id=stream_id, agent_id=status.agent_id,
                    task_id=status.task_id, uuid=status.uuid), timeout=10)
                print("acknowledged", status.task_id, status.uuid, flush=True)
            if status.task_id == task_id and status.state == common_pb2.TASK_FINISHED:
                stub.Teardown(scheduler_pb2.TeardownRequest(framework_id=framework_id, stream_id=stream_id), timeout=10)
                print("done", flush=True)
                sys.exit(0)
            if status.task_id == task_id and status.state in (common_pb2.TASK_FAILED, common_pb2.TASK_ERROR,
                                                              common_pb2.TASK_DROPPED, common_pb2.TASK_LOST):
                print("task ended badly:", status.message, flush=True)
                sys.exit(1)
print("the subscription ended before the task finished", flush=True)
sys.exit(1)
