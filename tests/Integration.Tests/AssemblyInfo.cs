using Xunit;

// Every test class runs real master and agent processes; on a 2-core machine running classes in
// parallel only makes timing flaky.
[assembly: CollectionBehavior(DisableTestParallelization = true)]
