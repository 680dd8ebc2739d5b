// `SupervisorShim agent supervise --run-dir DIR`: the same entry the CLI maps to SupervisorHost.
return await Scheduler.Agent.Supervision.SupervisorHost.RunAsync(args);
