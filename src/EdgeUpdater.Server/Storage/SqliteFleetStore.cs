using System.Data.Common;
using Microsoft.Data.Sqlite;

namespace EdgeUpdater.Server.Storage;

/// <summary>The fleet store in a SQLite file (the single-machine default), in WAL mode.</summary>
internal sealed class SqliteFleetStore : SqlFleetStore
{
    private readonly string _connectionString;

    public SqliteFleetStore(string connectionString)
    {
        var builder = new SqliteConnectionStringBuilder(connectionString)
        {
            Pooling = true,
            DefaultTimeout = 30,
        };
        if (!string.IsNullOrEmpty(builder.DataSource) && builder.DataSource != ":memory:")
        {
            var directory = Path.GetDirectoryName(Path.GetFullPath(builder.DataSource));
            if (directory is not null)
            {
                Directory.CreateDirectory(directory);
            }
        }

        _connectionString = builder.ToString();
    }

    /// <inheritdoc />
    protected override async ValueTask<DbConnection> OpenAsync(CancellationToken cancellationToken)
    {
        var connection = new SqliteConnection(_connectionString);
        await connection.OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var pragma = connection.CreateCommand();

        // WAL lets readers proceed while the status writer commits; NORMAL sync is durable across
        // process crashes in WAL mode and far cheaper than FULL. busy_timeout waits for other writers.
        pragma.CommandText = "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=30000;";
        await pragma.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        return connection;
    }

    /// <inheritdoc />
    protected override Task LockForMigrationAsync(DbConnection connection, DbTransaction transaction, CancellationToken cancellationToken) =>
        Task.CompletedTask; // Microsoft.Data.Sqlite begins transactions IMMEDIATE: the write lock is already held.

    /// <inheritdoc />
    public override ValueTask DisposeAsync()
    {
        // Pooled connections keep the file open; release them so that tests can delete the directory.
        SqliteConnection.ClearAllPools();
        return ValueTask.CompletedTask;
    }
}
