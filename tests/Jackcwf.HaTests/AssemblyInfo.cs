// Each test drives the one shared cluster (PostgreSQL, Redis, three replicas, the balancer) on a
// 2-core machine: one at a time, so they neither disturb each other nor their timings.
[assembly: Xunit.v3.Parallelization(Mode = Xunit.Sdk.ParallelMode.None)]
[assembly: AssemblyFixture(typeof(Jackcwf.HaTests.HaFixture))]
