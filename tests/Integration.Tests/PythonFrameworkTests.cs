using System.Diagnostics;
using Xunit;

namespace Scheduler.Integration.Tests;

/// <summary>A framework in another language: Python grpcio with stubs generated from protos/.</summary>
public sealed class PythonFrameworkTests(SharedCluster cluster) : IClassFixture<SharedCluster>
{
    private const string Python = "/usr/bin/python3";

    [Fact]
    public async Task A_python_grpcio_framework_subscribes_launches_and_acknowledges()
    {
        var stubs = Path.Combine(Path.GetTempPath(), "sched-py-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(stubs);
        try
        {
            var plugin = (await RunAsync("/bin/sh", ["-c", "command -v grpc_python_plugin"], TimeSpan.FromSeconds(10))).Output.Trim();
            Assert.False(string.IsNullOrEmpty(plugin), "grpc_python_plugin is not installed (protobuf-compiler-grpc)");
            var protos = Path.Combine(Schedctl.RepoRoot, "protos");
            var files = Directory.GetFiles(Path.Combine(protos, "sched", "v1"), "*.proto");
            var protoc = await RunAsync("protoc", ["-I", protos, "--python_out=" + stubs, "--grpc_out=" + stubs, "--plugin=protoc-gen-grpc=" + plugin, .. files], TimeSpan.FromSeconds(60));
            Assert.True(protoc.Code == 0, protoc.Output);
            File.WriteAllText(Path.Combine(stubs, "sched", "__init__.py"), "");
            File.WriteAllText(Path.Combine(stubs, "sched", "v1", "__init__.py"), "");

            var script = Path.Combine(Schedctl.RepoRoot, "tests", "Integration.Tests", "python", "hello_framework.py");
            var run = await RunAsync(Python, [script, stubs, cluster.MasterAddress], TimeSpan.FromSeconds(90));
            Assert.True(run.Code == 0, run.Output);
            var lines = run.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
            Assert.StartsWith("master healthy (", lines[0], StringComparison.Ordinal); // Operator.GetHealth from grpcio
            Assert.StartsWith("subscribed fw", lines[1], StringComparison.Ordinal);
            Assert.Contains(lines, l => l.StartsWith("launched py-", StringComparison.Ordinal));
            Assert.Contains(lines, l => l.StartsWith("update py-", StringComparison.Ordinal) && l.EndsWith("TASK_RUNNING", StringComparison.Ordinal));
            Assert.Contains(lines, l => l.StartsWith("acknowledged py-", StringComparison.Ordinal));
            Assert.Contains(lines, l => l.StartsWith("update py-", StringComparison.Ordinal) && l.EndsWith("TASK_FINISHED", StringComparison.Ordinal));
            Assert.Equal("done", lines[^1]);
        }
        finally
        {
            Directory.Delete(stubs, recursive: true);
        }
    }

    private static async Task<(int Code, string Output)> RunAsync(string file, IEnumerable<string> args, TimeSpan timeout)
    {
        var info = new ProcessStartInfo(file);
        foreach (var a in args)
        {
            info.ArgumentList.Add(a);
        }
        var result = await Schedctl.RunProcessAsync(info, timeout);
        return (result.ExitCode, result.Stdout + result.Stderr);
    }
}
