using System.Data.Common;
using Npgsql;

namespace EdgeUpdater.Server.Storage;

/// <summary>The fleet store in PostgreSQL, for deployments with several server replicas.</summary>
internal sealed class PostgresFleetStore : SqlFleetStore
{
    /// <summary>Arbitrary constant naming the advisory lock migrators take.</summary>
    private const long MigrationLockKey = 0x4564_6765_5570_6401;

    private readonly NpgsqlDataSource _dataSource;

    public PostgresFleetStore(string connectionString)
    {
        _dataSource = NpgsqlDataSource.Create(connectionString);
    }

    /// <inheritdoc />
    protected override async ValueTask<DbConnection> OpenAsync(CancellationToken cancellationToken) =>
        await _dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);

    /// <inheritdoc />
    protected override async Task LockForMigrationAsync(DbConnection connection, DbTransaction transaction, CancellationToken cancellationToken)
    {
        await using var command = Command(connection, transaction, "SELECT pg_advisory_xact_lock(@k)", ("k", MigrationLockKey));
        await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public override ValueTask DisposeAsync() => _dataSource.DisposeAsync();
}
