using System.Diagnostics;
using Grpc.Core;
using Sched.V1;
using Scheduler.Protocol;
using Xunit;
using Scheduler.Channels;

namespace Scheduler.Integration.Tests;

/// <summary>
/// bench/Rpc compares our server with the reference C++ gRPC server, built from
/// bench/Rpc/cpp by its build.sh. This builds it from scratch, as a fresh machine's first bench
/// run does, and calls it once, so that the build (packages, flags, protos) cannot rot unseen.
/// </summary>
public sealed class CppReferenceServerTests
{
    [Fact]
    public async Task The_reference_cpp_server_builds_from_a_clean_tree_and_answers_our_client()
    {
        var root = RepoRoot();
        var outDir = Directory.CreateTempSubdirectory("sched-cpp-ref-").FullName;
        try
        {
            var (code, output) = await ChildProcess.RunAsync("/bin/sh", [Path.Combine(root, "bench", "Rpc", "cpp", "build.sh"), Path.Combine(root, "protos"), outDir], TimeSpan.FromMinutes(10));
            Assert.True(code == 0, $"bench/Rpc/cpp/build.sh exited {code} (./test.sh installs libgrpc++-dev, libprotobuf-dev, protobuf-compiler-grpc and pkg-config):\n{output}");
            var binary = Path.Combine(outDir, "echo_server");
            Assert.True(File.Exists(binary), "build.sh succeeded but left no echo_server:\n" + output);

            using var server = Process.Start(new ProcessStartInfo(binary) { RedirectStandardInput = true, RedirectStandardOutput = true, UseShellExecute = false })!;
            try
            {
                using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
                var line = await server.StandardOutput.ReadLineAsync(cts.Token) ?? "";
                Assert.StartsWith("port ", line, StringComparison.Ordinal);
                using var channel = GrpcChannels.ForAddress("127.0.0.1:" + line[5..].Trim());
                var health = await channel.AsyncUnaryCall(OperatorMethods.GetHealth, new GetHealthRequest(), new CallOptions(deadline: DateTime.UtcNow.AddSeconds(10)));
                Assert.True(health.Healthy);
                using var stream = channel.AsyncServerStreamingCall(SchedulerMethods.Subscribe,
                    new SubscribeRequest { FrameworkInfo = new FrameworkInfo { Name = "5" } }, new CallOptions(deadline: DateTime.UtcNow.AddSeconds(10)));
                var events = 0;
                while (await stream.ResponseStream.MoveNext(cts.Token))
                {
                    events++;
                }
                Assert.Equal(5, events);
            }
            finally
            {
                server.Kill(entireProcessTree: true);
                await server.WaitForExitAsync();
            }
        }
        finally
        {
            Directory.Delete(outDir, recursive: true);
        }
    }

    private static string RepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "bench", "Rpc", "cpp", "build.sh")))
            {
                return dir.FullName;
            }
        }
        throw new InvalidOperationException("no bench/Rpc/cpp/build.sh above " + AppContext.BaseDirectory);
    }
}
