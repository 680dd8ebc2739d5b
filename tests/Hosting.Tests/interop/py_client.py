"""A grpcio client exercising our server (tests/Hosting.Tests/TestServices.cs, EchoService.cs) scenario by scenario.

Usage: py_client.py STUB_DIR PROTO_ROOT HOST:PORT
Prints one line per scenario: `ok NAME` or `FAIL NAME: reason`.
"""
import sys
import time
import traceback
from concurrent import futures

import stubs

stubs.load(sys.argv[1], sys.argv[2])

import grpc  # noqa: E402
from sched.v1 import agent_pb2, agent_pb2_grpc, operator_pb2, operator_pb2_grpc  # noqa: E402

MiB = 1024 * 1024
target = sys.argv[3]
channel = grpc.insecure_channel(target)
op = operator_pb2_grpc.OperatorStub(channel)
files = agent_pb2_grpc.AgentFilesStub(channel)
link = agent_pb2_grpc.AgentLinkStub(channel)
collect = channel.stream_unary(
    "/test.Echo/Collect",
    request_serializer=agent_pb2.FileChunk.SerializeToString,
    response_deserializer=agent_pb2.FileChunk.FromString)
health = operator_pb2.GetHealthRequest()


def expect(cond, what):
    if not cond:
        raise AssertionError(what)


def expect_code(fn, code):
    try:
        fn()
    except grpc.RpcError as e:
        expect(e.code() == code, "expected %s, got %s: %s" % (code, e.code(), e.details()))
        return e
    raise AssertionError("expected %s, call succeeded" % code)


def unary():
    r = op.GetHealth(health, timeout=10)
    expect(r.healthy and r.role == "test", "bad response %r" % r)


def server_streaming():
    chunks = list(files.TailFile(agent_pb2.TailFileRequest(offset=50), timeout=10))
    expect(len(chunks) == 50, "got %d chunks" % len(chunks))
    expect(chunks[49].data == b"chunk-49", "last chunk %r" % chunks[49])


def client_streaming():
    r = collect(iter([agent_pb2.FileChunk(data=b"%d," % i) for i in range(20)]), timeout=10)
    expect(r.offset == 20, "count %d" % r.offset)
    expect(r.data == b"".join(b"%d," % i for i in range(20)), "data %r" % r.data)


def bidi():
    msgs = [agent_pb2.AgentMessage(heartbeat=agent_pb2.AgentMessage.Heartbeat(sequence=i)) for i in range(1, 11)]
    call = link.Connect(iter(msgs), timeout=10)
    seqs = [m.ping.sequence for m in call]
    expect(seqs == list(range(1, 11)), "pings %r" % seqs)
    expect(dict(call.trailing_metadata()).get("x-end") == "done", "trailers %r" % (call.trailing_metadata(),))


def deadline():
    started = time.time()
    expect_code(lambda: op.GetHealth(health, timeout=0.2, metadata=(("x-mode", "sleep"),)), grpc.StatusCode.DEADLINE_EXCEEDED)
    expect(time.time() - started < 5, "took too long")
    r = op.GetHealth(health, timeout=30, metadata=(("x-mode", "deadline"),))
    expect(25000 <= int(r.role) <= 31000, "server saw deadline %s ms" % r.role)


def cancel():
    call = files.TailFile(agent_pb2.TailFileRequest(follow=True, path="py-cancel"), timeout=10)
    it = iter(call)
    next(it)
    next(it)
    call.cancel()
    expect(call.code() == grpc.StatusCode.CANCELLED, "code %s" % call.code())


def error_non_ascii():
    text = "Überlast: 100% voll — réessayez ✓"
    e = expect_code(lambda: op.GetHealth(health, timeout=10, metadata=(("x-mode", "fail"), ("x-detail-bin", text.encode("utf-8")))), grpc.StatusCode.FAILED_PRECONDITION)
    expect(e.details() == text, "details %r" % e.details())
    expect(dict(e.trailing_metadata()).get("x-reason") == "requested", "trailers %r" % (e.trailing_metadata(),))


def metadata():
    blob = bytes([0, 1, 2, 250, 255])
    r, call = op.GetHealth.with_call(health, timeout=10, metadata=(("x-echo", "hello"), ("x-echo-bin", blob)))
    initial = dict(call.initial_metadata())
    trailing = dict(call.trailing_metadata())
    expect(initial.get("x-echo") == "hello", "initial %r" % (initial,))
    expect(trailing.get("x-echo-trailer") == "hello", "trailing %r" % (trailing,))
    expect(trailing.get("x-echo-bin") == blob, "binary trailer %r" % (trailing,))


def size_limits():
    near = 4 * MiB - 64
    r = op.GetHealth(health, timeout=30, metadata=(("x-mode", "big"), ("x-size", str(near))))
    expect(len(r.version) == near, "near-limit response %d" % len(r.version))
    expect_code(lambda: op.GetHealth(health, timeout=30, metadata=(("x-mode", "big"), ("x-size", str(4 * MiB + 10)))), grpc.StatusCode.RESOURCE_EXHAUSTED)
    r = collect(iter([agent_pb2.FileChunk(data=b"a" * (4 * MiB - 64))]), timeout=30)
    expect(len(r.data) == 4 * MiB - 64, "near-limit request echoed %d" % len(r.data))
    e = expect_code(lambda: collect(iter([agent_pb2.FileChunk(data=b"a" * (4 * MiB + 1))]), timeout=30), grpc.StatusCode.RESOURCE_EXHAUSTED)


def concurrent():
    fs = [op.GetHealth.future(health, timeout=20) for _ in range(100)]
    results = [f.result() for f in fs]
    expect(all(r.healthy for r in results), "not all healthy")
    with futures.ThreadPoolExecutor(max_workers=100) as pool:
        got = list(pool.map(lambda i: [m.ping.sequence for m in link.Connect(iter([agent_pb2.AgentMessage(heartbeat=agent_pb2.AgentMessage.Heartbeat(sequence=i))]), timeout=20)], range(100)))
    expect(got == [[i] for i in range(100)], "bidi results %r" % got[:3])


def unimplemented():
    e = expect_code(lambda: channel.unary_unary("/test.Echo/Missing")(b"", timeout=10), grpc.StatusCode.UNIMPLEMENTED)


SCENARIOS = [unary, server_streaming, client_streaming, bidi, deadline, cancel, error_non_ascii,
             metadata, size_limits, concurrent, unimplemented]

for scenario in SCENARIOS:
    try:
        scenario()
        print("ok " + scenario.__name__, flush=True)
    except Exception as ex:  # noqa: BLE001 - report every scenario
        detail = "".join(traceback.format_exception_only(type(ex), ex)).strip().replace("\n", " | ")
        print("FAIL %s: %s" % (scenario.__name__, detail), flush=True)
