using System.Data.Common;
using System.Text.Json;
using EdgeUpdater.Protocol;

namespace EdgeUpdater.Server.Storage;

/// <summary>
/// <see cref="IFleetStore"/> in SQL that SQLite and PostgreSQL both accept. Providers supply
/// connections and the migration lock; everything else is shared so that both behave alike.
/// Times are stored as Unix milliseconds, enumerations by name, lists as JSON.
/// </summary>
internal abstract class SqlFleetStore : IFleetStore
{
    /// <summary>Opens a connection ready for use.</summary>
    protected abstract ValueTask<DbConnection> OpenAsync(CancellationToken cancellationToken);

    /// <summary>Serializes concurrent migrators (several replicas starting at once).</summary>
    protected abstract Task LockForMigrationAsync(DbConnection connection, DbTransaction transaction, CancellationToken cancellationToken);

    /// <inheritdoc />
    public abstract ValueTask DisposeAsync();

    /// <inheritdoc />
    public async Task MigrateAsync(CancellationToken cancellationToken = default)
    {
        // One transaction under the provider's lock: replicas starting together apply each script once.
        await using var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
        await LockForMigrationAsync(connection, transaction, cancellationToken).ConfigureAwait(false);
        await ExecuteAsync(connection, transaction, Migrations.CreateMigrationsTable, cancellationToken).ConfigureAwait(false);
        var applied = new HashSet<int>();
        await using (var query = Command(connection, transaction, "SELECT version FROM schema_migrations"))
        await using (var reader = await query.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false))
        {
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                applied.Add(reader.GetInt32(0));
            }
        }

        foreach (var (version, name, sql) in Migrations.All)
        {
            if (applied.Contains(version))
            {
                continue;
            }

            await ExecuteAsync(connection, transaction, sql, cancellationToken).ConfigureAwait(false);
            await using var record = Command(
                connection,
                transaction,
                "INSERT INTO schema_migrations (version, name, applied_at) VALUES (@v, @n, @t)",
                ("v", version),
                ("n", name),
                ("t", DateTimeOffset.UtcNow.ToUnixTimeMilliseconds()));
            await record.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }

        await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public async Task<IReadOnlyList<int>> GetAppliedMigrationsAsync(CancellationToken cancellationToken = default)
    {
        return await QueryAsync("SELECT version FROM schema_migrations ORDER BY version", r => r.GetInt32(0), cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public async Task<bool> AddReleaseAsync(ReleaseInfo release, CancellationToken cancellationToken = default)
    {
        await using var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var command = Command(
            connection,
            null,
            """
            INSERT INTO releases (manifest_sha256, image_sha256, image_size, name, version, target_kind, hardware, expires_at, published_at, target, architectures)
            VALUES (@m, @i, @s, @n, @v, @k, @h, @e, @p, @t, @a)
            ON CONFLICT (manifest_sha256) DO NOTHING
            """,
            ("m", release.ManifestSha256),
            ("i", release.ImageSha256),
            ("s", release.ImageSize),
            ("n", release.Name),
            ("v", release.Version),
            ("k", release.TargetKind),
            ("h", JsonSerializer.Serialize(release.Hardware, ServerJsonContext.Default.IReadOnlyListString)),
            ("e", release.ExpiresAt?.ToUnixTimeMilliseconds()),
            ("p", release.PublishedAt.ToUnixTimeMilliseconds()),
            ("t", release.Target),
            ("a", JsonSerializer.Serialize(release.Architectures, ServerJsonContext.Default.IReadOnlyListString)));
        return await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false) > 0;
    }

    /// <inheritdoc />
    public async Task<ReleaseInfo?> GetReleaseAsync(string manifestSha256, CancellationToken cancellationToken = default)
    {
        var rows = await QueryAsync(ReleaseColumns + " WHERE manifest_sha256 = @m", ReadRelease, cancellationToken, ("m", manifestSha256)).ConfigureAwait(false);
        return rows.Count > 0 ? rows[0] : null;
    }

    /// <inheritdoc />
    public Task<IReadOnlyList<ReleaseInfo>> ListReleasesAsync(CancellationToken cancellationToken = default) =>
        QueryAsync(ReleaseColumns + " ORDER BY published_at DESC, manifest_sha256", ReadRelease, cancellationToken);

    /// <inheritdoc />
    public async Task<bool> IsPublishedImageAsync(string imageSha256, CancellationToken cancellationToken = default)
    {
        var rows = await QueryAsync("SELECT 1 FROM releases WHERE image_sha256 = @i LIMIT 1", r => 1, cancellationToken, ("i", imageSha256)).ConfigureAwait(false);
        return rows.Count > 0;
    }

    /// <inheritdoc />
    public async Task UpsertDevicesAsync(IReadOnlyCollection<DeviceRecord> devices, CancellationToken cancellationToken = default)
    {
        if (devices.Count == 0)
        {
            return;
        }

        await using var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
        await using var command = Command(
            connection,
            transaction,
            """
            INSERT INTO devices (device_id, group_name, hardware, architecture, agent_version, state, online, last_seen, last_error, rollout_id, targets, codecs)
            VALUES (@id, @g, @h, @a, @av, @s, @o, @ls, @le, @r, @t, @c)
            ON CONFLICT (device_id) DO UPDATE SET
                group_name = excluded.group_name, hardware = excluded.hardware, architecture = excluded.architecture,
                agent_version = excluded.agent_version, state = excluded.state, online = excluded.online,
                last_seen = excluded.last_seen, last_error = excluded.last_error, rollout_id = excluded.rollout_id,
                targets = excluded.targets, codecs = excluded.codecs
            """,
            ("id", string.Empty),
            ("g", null),
            ("h", null),
            ("a", null),
            ("av", null),
            ("s", string.Empty),
            ("o", 0),
            ("ls", 0L),
            ("le", null),
            ("r", null),
            ("t", string.Empty),
            ("c", null));
        foreach (var device in devices)
        {
            Set(command, "id", device.DeviceId);
            Set(command, "g", device.Group);
            Set(command, "h", device.Hardware);
            Set(command, "a", device.Architecture);
            Set(command, "av", device.AgentVersion);
            Set(command, "s", device.State.ToString());
            Set(command, "o", device.Online ? 1 : 0);
            Set(command, "ls", device.LastSeen.ToUnixTimeMilliseconds());
            Set(command, "le", device.LastError);
            Set(command, "r", device.RolloutId);
            Set(command, "t", JsonSerializer.Serialize(device.Targets, ServerJsonContext.Default.IReadOnlyListTargetStatus));
            Set(command, "c", device.Codecs);
            await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }

        await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public async Task SetDeviceOfflineAsync(string deviceId, DateTimeOffset at, CancellationToken cancellationToken = default)
    {
        await using var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var command = Command(
            connection,
            null,
            """
            INSERT INTO devices (device_id, state, online, last_seen, targets) VALUES (@id, @s, 0, @ls, '[]')
            ON CONFLICT (device_id) DO UPDATE SET online = 0, last_seen = excluded.last_seen
            """,
            ("id", deviceId),
            ("s", nameof(UpdateState.Offline)),
            ("ls", at.ToUnixTimeMilliseconds()));
        await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public async Task<DeviceInfo?> GetDeviceAsync(string deviceId, CancellationToken cancellationToken = default)
    {
        var rows = await QueryAsync(DeviceColumns + " WHERE d.device_id = @id", ReadDevice, cancellationToken, ("id", deviceId)).ConfigureAwait(false);
        return rows.Count > 0 ? rows[0] : null;
    }

    /// <inheritdoc />
    public Task<IReadOnlyList<DeviceInfo>> ListDevicesAsync(string? group = null, CancellationToken cancellationToken = default) =>
        group is null
            ? QueryAsync(DeviceColumns + " ORDER BY d.device_id", ReadDevice, cancellationToken)
            : QueryAsync(DeviceColumns + " WHERE COALESCE(c.group_name, d.group_name) = @g ORDER BY d.device_id", ReadDevice, cancellationToken, ("g", group));

    /// <inheritdoc />
    public async Task SetCredentialAsync(DeviceCredentialRecord credential, CancellationToken cancellationToken = default)
    {
        await using var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var command = Command(
            connection,
            null,
            """
            INSERT INTO device_credentials (device_id, group_name, password_sha256, created_at) VALUES (@id, @g, @p, @t)
            ON CONFLICT (device_id) DO UPDATE SET group_name = excluded.group_name, password_sha256 = excluded.password_sha256, created_at = excluded.created_at
            """,
            ("id", credential.DeviceId),
            ("g", credential.Group),
            ("p", credential.PasswordSha256),
            ("t", credential.CreatedAt.ToUnixTimeMilliseconds()));
        await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public async Task<DeviceCredentialRecord?> GetCredentialAsync(string deviceId, CancellationToken cancellationToken = default)
    {
        var rows = await QueryAsync(CredentialColumns + " WHERE device_id = @id", ReadCredential, cancellationToken, ("id", deviceId)).ConfigureAwait(false);
        return rows.Count > 0 ? rows[0] : null;
    }

    /// <inheritdoc />
    public Task<IReadOnlyList<DeviceCredentialRecord>> ListCredentialsAsync(CancellationToken cancellationToken = default) =>
        QueryAsync(CredentialColumns + " ORDER BY device_id", ReadCredential, cancellationToken);

    /// <inheritdoc />
    public async Task<bool> DeleteCredentialAsync(string deviceId, CancellationToken cancellationToken = default)
    {
        await using var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var command = Command(connection, null, "DELETE FROM device_credentials WHERE device_id = @id", ("id", deviceId));
        return await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false) > 0;
    }

    /// <inheritdoc />
    public async Task AddRolloutAsync(RolloutRecord rollout, CancellationToken cancellationToken = default)
    {
        await using var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var command = Command(
            connection,
            null,
            """
            INSERT INTO rollouts (rollout_id, manifest_sha256, image_sha256, image_size, name, version, target, group_name, phases,
                success_threshold, failure_threshold, state, current_phase, pause_reason, failures_acknowledged, group_size,
                group_notice_published, created_at, updated_at)
            VALUES (@id, @m, @i, @is, @n, @v, @t, @g, @ph, @st, @ft, @s, @cp, @pr, @fa, @gs, @gn, @ca, @ua)
            """,
            RolloutParameters(rollout));
        await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public async Task UpdateRolloutAsync(RolloutRecord rollout, CancellationToken cancellationToken = default)
    {
        await using var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var command = Command(
            connection,
            null,
            """
            UPDATE rollouts SET state = @s, current_phase = @cp, pause_reason = @pr, failures_acknowledged = @fa,
                group_size = @gs, group_notice_published = @gn, updated_at = @ua
            WHERE rollout_id = @id
            """,
            ("id", rollout.Id),
            ("s", rollout.State.ToString()),
            ("cp", rollout.CurrentPhase),
            ("pr", rollout.PauseReason),
            ("fa", rollout.FailuresAcknowledged),
            ("gs", rollout.GroupSize),
            ("gn", rollout.GroupNoticePublished ? 1 : 0),
            ("ua", rollout.UpdatedAt.ToUnixTimeMilliseconds()));
        if (await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false) == 0)
        {
            throw new InvalidOperationException($"Rollout '{rollout.Id}' does not exist in the store.");
        }
    }

    /// <inheritdoc />
    public async Task<RolloutRecord?> GetRolloutAsync(string rolloutId, CancellationToken cancellationToken = default)
    {
        var rows = await QueryAsync(RolloutColumns + " WHERE rollout_id = @id", ReadRollout, cancellationToken, ("id", rolloutId)).ConfigureAwait(false);
        return rows.Count > 0 ? rows[0] : null;
    }

    /// <inheritdoc />
    public async Task<IReadOnlyList<RolloutRecord>> ListRolloutsAsync(IReadOnlyCollection<RolloutState>? states = null, CancellationToken cancellationToken = default)
    {
        var all = await QueryAsync(RolloutColumns + " ORDER BY created_at DESC, rollout_id", ReadRollout, cancellationToken).ConfigureAwait(false);
        return states is null ? all : all.Where(r => states.Contains(r.State)).ToList();
    }

    /// <inheritdoc />
    public Task AddRolloutDevicesAsync(IReadOnlyCollection<RolloutDeviceRecord> devices, CancellationToken cancellationToken = default) =>
        WriteRolloutDevicesAsync(
            """
            INSERT INTO rollout_devices (rollout_id, device_id, phase, outcome, notified_at, updated_at, last_error)
            VALUES (@r, @d, @p, @o, @n, @u, @e)
            ON CONFLICT (rollout_id, device_id) DO NOTHING
            """,
            devices,
            cancellationToken);

    /// <inheritdoc />
    public Task UpdateRolloutDevicesAsync(IReadOnlyCollection<RolloutDeviceRecord> devices, CancellationToken cancellationToken = default) =>
        WriteRolloutDevicesAsync(
            "UPDATE rollout_devices SET phase = @p, outcome = @o, notified_at = @n, updated_at = @u, last_error = @e WHERE rollout_id = @r AND device_id = @d",
            devices,
            cancellationToken);

    /// <summary>Runs <paramref name="sql"/> (parameters @r @d @p @o @n @u @e) once per device, in one transaction.</summary>
    private async Task WriteRolloutDevicesAsync(string sql, IReadOnlyCollection<RolloutDeviceRecord> devices, CancellationToken cancellationToken)
    {
        if (devices.Count == 0)
        {
            return;
        }

        await using var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
        await using var command = Command(
            connection,
            transaction,
            sql,
            ("r", string.Empty),
            ("d", string.Empty),
            ("p", 0),
            ("o", string.Empty),
            ("n", null),
            ("u", 0L),
            ("e", null));
        foreach (var device in devices)
        {
            SetRolloutDevice(command, device);
            await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }

        await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public Task<IReadOnlyList<RolloutDeviceRecord>> ListRolloutDevicesAsync(string rolloutId, CancellationToken cancellationToken = default) =>
        QueryAsync(RolloutDeviceColumns + " WHERE rollout_id = @r ORDER BY phase, device_id", ReadRolloutDevice, cancellationToken, ("r", rolloutId));

    /// <inheritdoc />
    public async Task<IReadOnlyList<RolloutDeviceRecord>> FindActiveRolloutDevicesAsync(IReadOnlyCollection<string> deviceIds, CancellationToken cancellationToken = default)
    {
        if (deviceIds.Count == 0)
        {
            return [];
        }

        // Active rollouts are few; their devices are filtered here rather than with a long IN list.
        var wanted = deviceIds as IReadOnlySet<string> ?? deviceIds.ToHashSet(StringComparer.Ordinal);
        var rows = await QueryAsync(
            RolloutDeviceColumns + " WHERE rollout_id IN (SELECT rollout_id FROM rollouts WHERE state = @a OR state = @b)",
            ReadRolloutDevice,
            cancellationToken,
            ("a", nameof(RolloutState.Running)),
            ("b", nameof(RolloutState.Paused))).ConfigureAwait(false);
        return rows.Where(r => wanted.Contains(r.DeviceId)).ToList();
    }

    /// <inheritdoc />
    public async Task<RolloutCounts> CountRolloutDevicesAsync(string rolloutId, CancellationToken cancellationToken = default)
    {
        var rows = await QueryAsync(
            "SELECT outcome, COUNT(*) FROM rollout_devices WHERE rollout_id = @r GROUP BY outcome",
            r => (Outcome: Enum.Parse<RolloutDeviceOutcome>(r.GetString(0)), Count: (int)r.GetInt64(1)),
            cancellationToken,
            ("r", rolloutId)).ConfigureAwait(false);
        int Of(RolloutDeviceOutcome o) => rows.Where(x => x.Outcome == o).Sum(x => x.Count);
        return new RolloutCounts(Of(RolloutDeviceOutcome.Pending), Of(RolloutDeviceOutcome.Notified), Of(RolloutDeviceOutcome.Succeeded), Of(RolloutDeviceOutcome.Failed));
    }

    /// <inheritdoc />
    public async Task AddCommandAsync(CommandRecord command, CancellationToken cancellationToken = default)
    {
        await using var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var insert = Command(
            connection,
            null,
            "INSERT INTO device_commands (command_id, device_id, kind, target, issued_at) VALUES (@id, @d, @k, @t, @at)",
            ("id", command.Id),
            ("d", command.DeviceId),
            ("k", command.Kind.ToString()),
            ("t", command.Target),
            ("at", command.IssuedAt.ToUnixTimeMilliseconds()));
        await insert.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public Task<IReadOnlyList<CommandRecord>> ListCommandsAsync(string deviceId, CancellationToken cancellationToken = default) =>
        QueryAsync(
            "SELECT command_id, device_id, kind, target, issued_at FROM device_commands WHERE device_id = @d ORDER BY issued_at DESC, command_id",
            r => new CommandRecord(r.GetString(0), r.GetString(1), Enum.Parse<DeviceCommandKind>(r.GetString(2)), NullableString(r, 3), FromMilliseconds(r.GetInt64(4))),
            cancellationToken,
            ("d", deviceId));

    /// <inheritdoc />
    public async Task AddKeySetAsync(KeySetRecord keySet, CancellationToken cancellationToken = default)
    {
        await using var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var insert = Command(
            connection,
            null,
            "INSERT INTO key_sets (version, envelope, added_at) VALUES (@v, @e, @t)",
            ("v", keySet.Version),
            ("e", Convert.ToBase64String(keySet.Envelope)),
            ("t", keySet.AddedAt.ToUnixTimeMilliseconds()));
        await insert.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public Task<IReadOnlyList<KeySetRecord>> ListKeySetsAsync(CancellationToken cancellationToken = default) =>
        QueryAsync(
            "SELECT version, envelope, added_at FROM key_sets ORDER BY version",
            r => new KeySetRecord(r.GetInt64(0), Convert.FromBase64String(r.GetString(1)), FromMilliseconds(r.GetInt64(2))),
            cancellationToken);

    /// <inheritdoc />
    public async Task<bool> TryAcquireLeaseAsync(string name, string holder, TimeSpan duration, DateTimeOffset now, CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(duration, TimeSpan.Zero);

        // One statement decides: the insert wins a free lease; on conflict the row is locked and the
        // WHERE (re-checked on the newest row version in PostgreSQL) lets only the holder or, once the
        // lease ran out, anyone take it. Zero rows written means another holder's lease is running.
        await using var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var command = Command(
            connection,
            null,
            """
            INSERT INTO leases (name, holder, expires_at) VALUES (@n, @h, @e)
            ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
            WHERE leases.holder = excluded.holder OR leases.expires_at <= @now
            """,
            ("n", name),
            ("h", holder),
            ("e", (now + duration).ToUnixTimeMilliseconds()),
            ("now", now.ToUnixTimeMilliseconds()));
        return await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false) > 0;
    }

    /// <inheritdoc />
    public async Task<bool> ReleaseLeaseAsync(string name, string holder, CancellationToken cancellationToken = default)
    {
        await using var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var command = Command(connection, null, "DELETE FROM leases WHERE name = @n AND holder = @h", ("n", name), ("h", holder));
        return await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false) > 0;
    }

    /// <inheritdoc />
    public async Task<LeaseRecord?> GetLeaseAsync(string name, CancellationToken cancellationToken = default)
    {
        var rows = await QueryAsync(
            "SELECT name, holder, expires_at FROM leases WHERE name = @n",
            r => new LeaseRecord(r.GetString(0), r.GetString(1), FromMilliseconds(r.GetInt64(2))),
            cancellationToken,
            ("n", name)).ConfigureAwait(false);
        return rows.Count > 0 ? rows[0] : null;
    }

    private const string ReleaseColumns =
        "SELECT manifest_sha256, image_sha256, image_size, name, version, target_kind, hardware, expires_at, published_at, target, architectures FROM releases";

    private const string DeviceColumns =
        """
        SELECT d.device_id, COALESCE(c.group_name, d.group_name), d.hardware, d.architecture, d.agent_version, d.state, d.online,
            d.last_seen, d.last_error, d.rollout_id, d.targets, CASE WHEN c.device_id IS NULL THEN 0 ELSE 1 END
        FROM devices d LEFT JOIN device_credentials c ON c.device_id = d.device_id
        """;

    private const string CredentialColumns = "SELECT device_id, group_name, password_sha256, created_at FROM device_credentials";

    private const string RolloutColumns =
        """
        SELECT rollout_id, manifest_sha256, image_sha256, image_size, name, version, target, group_name, phases, success_threshold,
            failure_threshold, state, current_phase, pause_reason, failures_acknowledged, group_size, group_notice_published, created_at, updated_at
        FROM rollouts
        """;

    private const string RolloutDeviceColumns =
        "SELECT rollout_id, device_id, phase, outcome, notified_at, updated_at, last_error FROM rollout_devices";

    private static ReleaseInfo ReadRelease(DbDataReader r) => new()
    {
        ManifestSha256 = r.GetString(0),
        ImageSha256 = r.GetString(1),
        ImageSize = r.GetInt64(2),
        Name = r.GetString(3),
        Version = r.GetString(4),
        TargetKind = NullableString(r, 5),
        Hardware = JsonSerializer.Deserialize(r.GetString(6), ServerJsonContext.Default.IReadOnlyListString) ?? [],
        ExpiresAt = r.IsDBNull(7) ? null : FromMilliseconds(r.GetInt64(7)),
        PublishedAt = FromMilliseconds(r.GetInt64(8)),
        Target = NullableString(r, 9),
        Architectures = r.IsDBNull(10) ? [] : JsonSerializer.Deserialize(r.GetString(10), ServerJsonContext.Default.IReadOnlyListString) ?? [],
    };

    private static DeviceInfo ReadDevice(DbDataReader r) => new()
    {
        DeviceId = r.GetString(0),
        Group = NullableString(r, 1),
        Hardware = NullableString(r, 2),
        Architecture = NullableString(r, 3),
        AgentVersion = NullableString(r, 4),
        State = Enum.Parse<UpdateState>(r.GetString(5)),
        Online = r.GetInt32(6) != 0,
        LastSeen = r.IsDBNull(7) ? null : FromMilliseconds(r.GetInt64(7)),
        LastError = NullableString(r, 8),
        RolloutId = NullableString(r, 9),
        Targets = JsonSerializer.Deserialize(r.GetString(10), ServerJsonContext.Default.IReadOnlyListTargetStatus) ?? [],
        HasCredentials = r.GetInt32(11) != 0,
    };

    private static DeviceCredentialRecord ReadCredential(DbDataReader r) =>
        new(r.GetString(0), NullableString(r, 1), r.GetString(2), FromMilliseconds(r.GetInt64(3)));

    private static RolloutRecord ReadRollout(DbDataReader r) => new()
    {
        Id = r.GetString(0),
        ManifestSha256 = r.GetString(1),
        ImageSha256 = r.GetString(2),
        ImageSize = r.GetInt64(3),
        Name = r.GetString(4),
        Version = r.GetString(5),
        Target = r.GetString(6),
        Group = r.GetString(7),
        Phases = JsonSerializer.Deserialize(r.GetString(8), ServerJsonContext.Default.IReadOnlyListDouble) ?? [],
        SuccessThreshold = r.GetDouble(9),
        FailureThreshold = r.GetDouble(10),
        State = Enum.Parse<RolloutState>(r.GetString(11)),
        CurrentPhase = r.GetInt32(12),
        PauseReason = NullableString(r, 13),
        FailuresAcknowledged = r.GetInt32(14),
        GroupSize = r.GetInt32(15),
        GroupNoticePublished = r.GetInt32(16) != 0,
        CreatedAt = FromMilliseconds(r.GetInt64(17)),
        UpdatedAt = FromMilliseconds(r.GetInt64(18)),
    };

    private static RolloutDeviceRecord ReadRolloutDevice(DbDataReader r) => new(
        r.GetString(0),
        r.GetString(1),
        r.GetInt32(2),
        Enum.Parse<RolloutDeviceOutcome>(r.GetString(3)),
        r.IsDBNull(4) ? null : FromMilliseconds(r.GetInt64(4)),
        FromMilliseconds(r.GetInt64(5)),
        NullableString(r, 6));

    private static (string, object?)[] RolloutParameters(RolloutRecord r) =>
    [
        ("id", r.Id), ("m", r.ManifestSha256), ("i", r.ImageSha256), ("is", r.ImageSize), ("n", r.Name), ("v", r.Version),
        ("t", r.Target), ("g", r.Group), ("ph", JsonSerializer.Serialize(r.Phases, ServerJsonContext.Default.IReadOnlyListDouble)),
        ("st", r.SuccessThreshold), ("ft", r.FailureThreshold), ("s", r.State.ToString()), ("cp", r.CurrentPhase),
        ("pr", r.PauseReason), ("fa", r.FailuresAcknowledged), ("gs", r.GroupSize), ("gn", r.GroupNoticePublished ? 1 : 0),
        ("ca", r.CreatedAt.ToUnixTimeMilliseconds()), ("ua", r.UpdatedAt.ToUnixTimeMilliseconds()),
    ];

    private static void SetRolloutDevice(DbCommand command, RolloutDeviceRecord device)
    {
        Set(command, "r", device.RolloutId);
        Set(command, "d", device.DeviceId);
        Set(command, "p", device.Phase);
        Set(command, "o", device.Outcome.ToString());
        Set(command, "n", device.NotifiedAt?.ToUnixTimeMilliseconds());
        Set(command, "u", device.UpdatedAt.ToUnixTimeMilliseconds());
        Set(command, "e", device.LastError);
    }

    private static string? NullableString(DbDataReader r, int ordinal) => r.IsDBNull(ordinal) ? null : r.GetString(ordinal);

    private static DateTimeOffset FromMilliseconds(long value) => DateTimeOffset.FromUnixTimeMilliseconds(value);

    private async Task<IReadOnlyList<T>> QueryAsync<T>(string sql, Func<DbDataReader, T> read, CancellationToken cancellationToken, params (string Name, object? Value)[] parameters)
    {
        await using var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var command = Command(connection, null, sql, parameters);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        var rows = new List<T>();
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            rows.Add(read(reader));
        }

        return rows;
    }

    private static async Task ExecuteAsync(DbConnection connection, DbTransaction? transaction, string sql, CancellationToken cancellationToken)
    {
        await using var command = Command(connection, transaction, sql);
        await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Builds a command with named parameters (<c>@name</c> in the SQL, which both providers accept).</summary>
    protected static DbCommand Command(DbConnection connection, DbTransaction? transaction, string sql, params (string Name, object? Value)[] parameters)
    {
        var command = connection.CreateCommand();
#pragma warning disable CA2100 // Every SQL text here is a constant of this class; values always go through parameters.
        command.CommandText = sql;
#pragma warning restore CA2100
        command.Transaction = transaction;
        foreach (var (name, value) in parameters)
        {
            var parameter = command.CreateParameter();
            parameter.ParameterName = name;
            parameter.Value = value ?? DBNull.Value;
            command.Parameters.Add(parameter);
        }

        return command;
    }

    private static void Set(DbCommand command, string name, object? value)
    {
        var parameter = command.Parameters[name];
        parameter.Value = value ?? DBNull.Value;
    }
}
