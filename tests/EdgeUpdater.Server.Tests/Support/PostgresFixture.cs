using EdgeUpdater.Testing;
using Xunit;

[assembly: AssemblyFixture(typeof(EdgeUpdater.Server.Tests.Support.PostgresFixture))]

namespace EdgeUpdater.Server.Tests.Support;

/// <summary>One real PostgreSQL for the whole test assembly, started on first use; each test takes a fresh database.</summary>
public sealed class PostgresFixture : IAsyncDisposable
{
    private readonly SemaphoreSlim _gate = new(1, 1);
    private PostgresServer? _server;

    public async Task<string> CreateDatabaseAsync(string prefix)
    {
        await _gate.WaitAsync();
        try
        {
            _server ??= await PostgresServer.StartAsync();
        }
        finally
        {
            _gate.Release();
        }

        return await _server.CreateDatabaseAsync(prefix);
    }

    public async ValueTask DisposeAsync()
    {
        if (_server is not null)
        {
            await _server.DisposeAsync();
        }

        _gate.Dispose();
    }
}
