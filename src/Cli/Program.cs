using Scheduler.Cli;

return await CliApp.RunAsync(args);
