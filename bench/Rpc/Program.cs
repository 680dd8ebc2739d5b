using Scheduler.Bench.Rpc;

return await BenchProgram.RunAsync(args);
