using Xunit;

namespace EdgeUpdater.Delta.Tests;

/// <summary>
/// A parallel loop over a damaged delta's blocks must report the damage a sequential loop would report, the
/// lowest block's, however its threads are timed: the same delta gives the same message on every run.
/// </summary>
public sealed class ParallelWorkTests
{
    [Fact]
    public void A_loop_fails_with_the_exception_of_its_lowest_failing_index()
    {
        for (var run = 0; run < 20; run++)
        {
            var random = new Random(run);
            var delays = Enumerable.Range(0, 64).Select(_ => random.Next(3)).ToArray();
            var e = Assert.Throws<InvalidDataException>(() => ParallelWork.For(
                64,
                new ParallelOptions { MaxDegreeOfParallelism = 4 },
                () => 0,
                (i, local) =>
                {
                    // The high indexes fail first; a loop that kept the first exception thrown would report one of them.
                    Thread.Sleep(i is 9 ? 20 : delays[i]);
                    return i is 9 or 40 or 41 or 63 ? throw new InvalidDataException($"block {i}") : local;
                },
                _ => { }));
            Assert.Equal("block 9", e.Message);
        }
    }

    [Fact]
    public void A_loop_that_does_not_fail_runs_every_index_once()
    {
        var runs = new int[100];
        ParallelWork.For(runs.Length, new ParallelOptions { MaxDegreeOfParallelism = 4 }, () => 0, (i, local) => { Interlocked.Increment(ref runs[i]); return local; }, _ => { });
        Assert.All(runs, count => Assert.Equal(1, count));
    }
}
