"""A grpcio server implementing the same test behaviour as tests/Hosting.Tests/TestServices.cs.

Usage: py_server.py STUB_DIR PROTO_ROOT
Prints `port N` once listening, then `cancelled ID` whenever a follow-stream is cancelled by the
client. Exits when stdin closes.
"""
import sys
import threading
import time
from concurrent import futures

import stubs

stubs.load(sys.argv[1], sys.argv[2])

import grpc  # noqa: E402
from sched.v1 import agent_pb2, agent_pb2_grpc, operator_pb2, operator_pb2_grpc  # noqa: E402

out_lock = threading.Lock()


def say(line):
    with out_lock:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


def md(context):
    return {k: v for k, v in context.invocation_metadata()}


class Operator(operator_pb2_grpc.OperatorServicer):
    def GetHealth(self, request, context):
        m = md(context)
        mode = m.get("x-mode", "echo")
        if mode == "fail":
            detail = m["x-detail-bin"].decode("utf-8") if "x-detail-bin" in m else m.get("x-detail", "failed")
            context.set_trailing_metadata((("x-reason", "requested"),))
            context.abort(grpc.StatusCode.FAILED_PRECONDITION, detail)
        if mode == "sleep":
            while context.is_active():
                time.sleep(0.01)
            return operator_pb2.GetHealthResponse()
        if mode == "big":
            return operator_pb2.GetHealthResponse(version="x" * int(m["x-size"]))
        if mode == "deadline":
            left = context.time_remaining()
            return operator_pb2.GetHealthResponse(role="none" if left is None else str(int(left * 1000)))
        if "x-echo" in m:
            context.send_initial_metadata((("x-echo", m["x-echo"]),))
            trailers = [("x-echo-trailer", m["x-echo"])]
            if "x-echo-bin" in m:
                trailers.append(("x-echo-bin", m["x-echo-bin"]))
            context.set_trailing_metadata(tuple(trailers))
        return operator_pb2.GetHealthResponse(healthy=True, role="test", version=context.peer())


class Files(agent_pb2_grpc.AgentFilesServicer):
    def TailFile(self, request, context):
        if request.follow:
            # A follow stream only ends when the client goes away; the termination callback
            # fires even when grpc stops pulling from this generator mid-yield.
            path = request.path
            context.add_callback(lambda: say("cancelled " + path))
            i = 0
            while context.is_active():
                yield agent_pb2.FileChunk(offset=i, data=b"tick")
                i += 1
                time.sleep(0.01)
            return
        for i in range(request.offset):
            yield agent_pb2.FileChunk(offset=i, data=("chunk-%d" % i).encode())
        if request.path == "fail-after":
            context.abort(grpc.StatusCode.DATA_LOSS, "stream broke after the messages")


class Link(agent_pb2_grpc.AgentLinkServicer):
    def Connect(self, request_iterator, context):
        for m in request_iterator:
            if m.WhichOneof("message") == "heartbeat":
                yield agent_pb2.MasterMessage(ping=agent_pb2.MasterMessage.Ping(sequence=m.heartbeat.sequence))
        context.set_trailing_metadata((("x-end", "done"), ("x-end-empty", "")))


def collect(request_iterator, context):
    data = b""
    n = 0
    for chunk in request_iterator:
        data += chunk.data
        n += 1
    return agent_pb2.FileChunk(offset=n, data=data)


def main():
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=160), maximum_concurrent_rpcs=None)
    operator_pb2_grpc.add_OperatorServicer_to_server(Operator(), server)
    agent_pb2_grpc.add_AgentFilesServicer_to_server(Files(), server)
    agent_pb2_grpc.add_AgentLinkServicer_to_server(Link(), server)
    echo = grpc.method_handlers_generic_handler("test.Echo", {
        "Collect": grpc.stream_unary_rpc_method_handler(
            collect,
            request_deserializer=agent_pb2.FileChunk.FromString,
            response_serializer=agent_pb2.FileChunk.SerializeToString),
    })
    server.add_generic_rpc_handlers((echo,))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    say("port %d" % port)
    sys.stdin.read()
    server.stop(0)


if __name__ == "__main__":
    main()
