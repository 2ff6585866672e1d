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
}
