using EdgeUpdater.Delta.Format;
using Xunit;

namespace EdgeUpdater.Delta.Tests.Apply;

/// <summary>Alone in its collection: it measures the process's allocations, which parallel tests would add to.</summary>
[CollectionDefinition(nameof(OpCountTests), DisableParallelization = true)]
public sealed class OpCountGroup;

/// <summary>
/// An ops section of 8 MiB can say four million ops of two bytes each. The applier runs them in batches, so
/// its memory does not follow their count.
/// </summary>
[Collection(nameof(OpCountTests))]
public sealed class OpCountTests
{
    [Fact]
    public async Task Millions_of_ops_in_one_section_apply_in_bounded_memory()
    {
        const int emptyOps = 4_000_000;
        var delta = HostileDeltaTests.Build(
            HostileDeltaTests.Header(),
            (SectionKind.Ops, HostileDeltaTests.Ops(w =>
            {
                // Empty zero runs: two bytes each, nothing written; the ops around them give the target.
                for (var i = 0; i < emptyOps; i++)
                {
                    w.U8((byte)OpCode.Zeros);
                    w.VarU(0);
                }

                w.U8((byte)OpCode.Copy);
                w.VarS(0);
                w.VarU(30000);
                w.U8((byte)OpCode.Literal);
                w.Blob(HostileDeltaTests.Target.AsSpan(30000, 5000));
                w.U8((byte)OpCode.Copy);
                w.VarS(10000);
                w.VarU((ulong)(HostileDeltaTests.Base.Length - 40000));
            })),
            (SectionKind.End, HostileDeltaTests.End(HostileDeltaTests.Target.Length)));

        var before = GC.GetTotalAllocatedBytes(precise: true);
        var target = await DeltaTestKit.ApplyAsync(HostileDeltaTests.Base, delta);
        var allocated = GC.GetTotalAllocatedBytes(precise: true) - before;

        Assert.Equal(HostileDeltaTests.Target, target);
        // The section's payload (8 MiB) is the floor: 10 MiB measured; the ops held all at once took 328 MiB.
        Assert.True(allocated < 32L << 20, $"{allocated >> 20} MiB allocated for one section of {emptyOps} ops");
    }
}
