using Jackcwf.BrowserTests;

// One service and one browser for the whole run; tests take turns so that streaming timings are
// not distorted by other tests competing for two cores.
[assembly: AssemblyFixture(typeof(BrowserFixture))]
[assembly: Xunit.v3.Parallelization(Mode = Xunit.Sdk.ParallelMode.None)]
