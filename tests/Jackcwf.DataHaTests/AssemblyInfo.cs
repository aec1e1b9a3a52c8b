// One data-tier deployment serves the assembly (starting etcd, Patroni, Sentinel, the replicas and
// the balancer is the slow part); its tests break one component each, one at a time.
[assembly: Xunit.v3.Parallelization(Mode = Xunit.Sdk.ParallelMode.None)]
[assembly: AssemblyFixture(typeof(Jackcwf.DataHaTests.DataTierFixture))]
