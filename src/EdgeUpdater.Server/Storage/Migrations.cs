namespace EdgeUpdater.Server.Storage;

/// <summary>
/// The schema, as ordered migrations. Applied ones are recorded in <c>schema_migrations</c>; a new
/// version is a new entry at the end, never an edit of an applied one. The SQL is the common subset
/// of SQLite and PostgreSQL (TEXT, INTEGER, BIGINT, DOUBLE PRECISION; times as Unix milliseconds).
/// </summary>
internal static class Migrations
{
    public const string CreateMigrationsTable =
        "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)";

    public static IReadOnlyList<(int Version, string Name, string Sql)> All { get; } =
    [
        (1, "initial fleet schema", """
            CREATE TABLE releases (
                manifest_sha256 TEXT PRIMARY KEY,
                image_sha256 TEXT NOT NULL,
                image_size BIGINT NOT NULL,
                name TEXT NOT NULL,
                version TEXT NOT NULL,
                target_kind TEXT NULL,
                hardware TEXT NOT NULL,
                expires_at BIGINT NULL,
                published_at BIGINT NOT NULL
            );
            CREATE INDEX releases_image ON releases (image_sha256);

            CREATE TABLE devices (
                device_id TEXT PRIMARY KEY,
                group_name TEXT NULL,
                hardware TEXT NULL,
                architecture TEXT NULL,
                agent_version TEXT NULL,
                state TEXT NOT NULL,
                online INTEGER NOT NULL,
                last_seen BIGINT NULL,
                last_error TEXT NULL,
                rollout_id TEXT NULL,
                targets TEXT NOT NULL,
                codecs TEXT NULL
            );
            CREATE INDEX devices_group ON devices (group_name);

            CREATE TABLE device_credentials (
                device_id TEXT PRIMARY KEY,
                group_name TEXT NULL,
                password_sha256 TEXT NOT NULL,
                created_at BIGINT NOT NULL
            );

            CREATE TABLE rollouts (
                rollout_id TEXT PRIMARY KEY,
                manifest_sha256 TEXT NOT NULL,
                image_sha256 TEXT NOT NULL,
                image_size BIGINT NOT NULL,
                name TEXT NOT NULL,
                version TEXT NOT NULL,
                target TEXT NOT NULL,
                group_name TEXT NOT NULL,
                phases TEXT NOT NULL,
                success_threshold DOUBLE PRECISION NOT NULL,
                failure_threshold DOUBLE PRECISION NOT NULL,
                state TEXT NOT NULL,
                current_phase INTEGER NOT NULL,
                pause_reason TEXT NULL,
                failures_acknowledged INTEGER NOT NULL,
                group_size INTEGER NOT NULL,
                group_notice_published INTEGER NOT NULL,
                created_at BIGINT NOT NULL,
                updated_at BIGINT NOT NULL
            );
            CREATE INDEX rollouts_state ON rollouts (state);

            CREATE TABLE rollout_devices (
                rollout_id TEXT NOT NULL,
                device_id TEXT NOT NULL,
                phase INTEGER NOT NULL,
                outcome TEXT NOT NULL,
                notified_at BIGINT NULL,
                updated_at BIGINT NOT NULL,
                last_error TEXT NULL,
                PRIMARY KEY (rollout_id, device_id)
            );
            CREATE INDEX rollout_devices_device ON rollout_devices (device_id);

            CREATE TABLE device_commands (
                command_id TEXT PRIMARY KEY,
                device_id TEXT NOT NULL,
                kind TEXT NOT NULL,
                target TEXT NULL,
                issued_at BIGINT NOT NULL
            );
            CREATE INDEX device_commands_device ON device_commands (device_id);
            """),
        (2, "release target and architectures; key set chain", """
            ALTER TABLE releases ADD COLUMN target TEXT NULL;
            ALTER TABLE releases ADD COLUMN architectures TEXT NULL;

            CREATE TABLE key_sets (
                version BIGINT PRIMARY KEY,
                envelope TEXT NOT NULL,
                added_at BIGINT NOT NULL
            );
            """),
        (3, "leases (one rollout engine among several replicas)", """
            CREATE TABLE leases (
                name TEXT PRIMARY KEY,
                holder TEXT NOT NULL,
                expires_at BIGINT NOT NULL
            );
            """),
    ];
}
