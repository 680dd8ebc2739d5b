// The cluster tests run real master, agent and jobs processes; on a 2-core machine running
// classes in parallel only makes timing flaky.
[assembly: CollectionBehavior(DisableTestParallelization = true)]
