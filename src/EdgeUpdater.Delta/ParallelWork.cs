using System.Runtime.ExceptionServices;

namespace EdgeUpdater.Delta;

/// <summary>
/// Runs a <see cref="Parallel"/> loop so that it fails like a sequential one: with the exception a body
/// threw (a <see cref="DeltaException"/>, say), not an <see cref="AggregateException"/> around it.
/// </summary>
internal static class ParallelWork
{
    public static void Run(Action loop)
    {
        try
        {
            loop();
        }
        catch (AggregateException e)
        {
            // Several bodies may fail at once; each one alone would have stopped a sequential loop.
            ExceptionDispatchInfo.Throw(e.Flatten().InnerExceptions[0]);
        }
    }

    /// <summary>
    /// <c>Parallel.For(0, count, ...)</c> with thread-local state that fails with the exception of the lowest
    /// index that threw, as the sequential loop would, whatever the threads' timing: a damaged delta is then
    /// reported by the same message on every run and machine. The iterations below a failed one all run
    /// (<see cref="ParallelLoopState.Break"/>); those above it may not.
    /// </summary>
    public static void For<TLocal>(int count, ParallelOptions options, Func<TLocal> localInit, Func<int, TLocal, TLocal> body, Action<TLocal> localFinally)
    {
        var failures = new Exception?[count];
        Run(() => Parallel.For(
            0,
            count,
            options,
            localInit,
            (i, loop, local) =>
            {
                try
                {
                    return body(i, local);
                }
                catch (Exception e)
                {
                    failures[i] = e;
                    loop.Break();
                    return local;
                }
            },
            localFinally));
        if (Array.Find(failures, failure => failure is not null) is { } first)
        {
            ExceptionDispatchInfo.Throw(first);
        }
    }
}
