using System.Diagnostics;
using System.Text;

namespace EdgeUpdater.Testing;

/// <summary>
/// A real PostgreSQL (Debian's, /usr/lib/postgresql/15/bin) in a temp directory on a free loopback
/// port: initdb with trust authentication, then <c>postgres</c> with durability switched off (tests
/// need speed, not crash safety). PostgreSQL refuses to run as root, so as root both run as the
/// <c>postgres</c> system user (via setpriv, which execs without forking, so the process we hold is the
/// postmaster itself). Each test takes its own database from <see cref="CreateDatabaseAsync"/>.
/// </summary>
public sealed class PostgresServer : IAsyncDisposable
{
    private readonly TempDirectory _directory = new("postgres");
    private readonly StringBuilder _log = new();
    private Process? _process;
    private int _databases;

    private PostgresServer(int port)
    {
        Port = port;
    }

    /// <summary>TCP port on 127.0.0.1.</summary>
    public int Port { get; }

    /// <summary>What the server logged so far (for assertion messages).</summary>
    public string Log
    {
        get
        {
            lock (_log)
            {
                return _log.ToString();
            }
        }
    }

    /// <summary>Initializes a cluster and starts the server; returns once it accepts connections.</summary>
    public static async Task<PostgresServer> StartAsync(CancellationToken cancellationToken = default)
    {
        var server = new PostgresServer(FreePort.Next());
        try
        {
            await server.InitializeAsync(cancellationToken);
            await server.StartProcessAsync(cancellationToken);
        }
        catch
        {
            await server.DisposeAsync();
            throw;
        }

        return server;
    }

    /// <summary>Creates an empty database and returns an Npgsql connection string for it.</summary>
    public async Task<string> CreateDatabaseAsync(string? prefix = null, CancellationToken cancellationToken = default)
    {
        var unique = $"{prefix ?? "test"}_{Interlocked.Increment(ref _databases)}_{Guid.NewGuid():N}";
        var name = unique[..Math.Min(unique.Length, 40)].ToLowerInvariant();
        await RunAsPostgresCheckedAsync("createdb", ["-h", "127.0.0.1", "-p", Port.ToString(System.Globalization.CultureInfo.InvariantCulture), "-U", "postgres", name], cancellationToken);
        return ConnectionString(name);
    }

    /// <summary>Connection string for <paramref name="database"/> as the superuser.</summary>
    public string ConnectionString(string database) =>
        $"Host=127.0.0.1;Port={Port};Username=postgres;Database={database};Pooling=true;Maximum Pool Size=20";

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        if (_process is { HasExited: false })
        {
            // SIGINT is PostgreSQL's "fast shutdown": backends end and the postmaster exits.
            await ExternalTool.RunAsync("kill", ["-INT", _process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
            using var limit = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            try
            {
                await _process.WaitForExitAsync(limit.Token);
            }
            catch (OperationCanceledException)
            {
                _process.Kill(entireProcessTree: true);
            }
        }

        _process?.Dispose();
        _directory.Dispose();
    }

    private string DataDirectory => _directory.Combine("data");

    private string SocketDirectory => _directory.Combine("run");

    private async Task InitializeAsync(CancellationToken cancellationToken)
    {
        Directory.CreateDirectory(SocketDirectory);
        if (Privileges.IsRoot)
        {
            await ExternalTool.RunCheckedAsync("chown", ["-R", "postgres:postgres", _directory.Path], cancellationToken: cancellationToken);
        }

        await RunAsPostgresCheckedAsync("initdb", ["-D", DataDirectory, "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync", "--no-instructions"], cancellationToken);
    }

    private async Task StartProcessAsync(CancellationToken cancellationToken)
    {
        var arguments = new List<string>
        {
            "-D", DataDirectory,
            "-p", Port.ToString(System.Globalization.CultureInfo.InvariantCulture),
            "-k", SocketDirectory,
            "-c", "listen_addresses=127.0.0.1",
            "-c", "fsync=off",
            "-c", "synchronous_commit=off",
            "-c", "full_page_writes=off",
            "-c", "max_connections=200",
        };
        var info = StartInfo("postgres", arguments);
        info.RedirectStandardError = true;
        info.RedirectStandardOutput = true;
        var process = Process.Start(info) ?? throw new InvalidOperationException("could not start postgres");
        process.ErrorDataReceived += (_, e) => Append(e.Data);
        process.OutputDataReceived += (_, e) => Append(e.Data);
        process.BeginErrorReadLine();
        process.BeginOutputReadLine();
        _process = process;

        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (true)
        {
            if (process.HasExited)
            {
                throw new InvalidOperationException($"postgres exited with {process.ExitCode} before accepting connections:\n{Log}");
            }

            var ready = await ExternalTool.RunAsync("pg_isready", ["-h", "127.0.0.1", "-p", Port.ToString(System.Globalization.CultureInfo.InvariantCulture), "-U", "postgres"], cancellationToken: cancellationToken);
            if (ready.ExitCode == 0)
            {
                return;
            }

            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"postgres did not accept connections on {Port} within 30 s:\n{Log}");
            }

            await Task.Delay(100, cancellationToken);
        }
    }

    private async Task RunAsPostgresCheckedAsync(string tool, IReadOnlyList<string> arguments, CancellationToken cancellationToken)
    {
        if (Privileges.IsRoot)
        {
            await ExternalTool.RunCheckedAsync("setpriv", ["--reuid=postgres", "--regid=postgres", "--init-groups", "--", ExternalTool.Require(tool), .. arguments], TimeSpan.FromMinutes(1), _directory.Path, cancellationToken);
        }
        else
        {
            await ExternalTool.RunCheckedAsync(tool, arguments, TimeSpan.FromMinutes(1), _directory.Path, cancellationToken);
        }
    }

    private ProcessStartInfo StartInfo(string tool, IReadOnlyList<string> arguments)
    {
        ProcessStartInfo info;
        if (Privileges.IsRoot)
        {
            info = new ProcessStartInfo(ExternalTool.Require("setpriv"));
            foreach (var argument in (string[])["--reuid=postgres", "--regid=postgres", "--init-groups", "--", ExternalTool.Require(tool)])
            {
                info.ArgumentList.Add(argument);
            }
        }
        else
        {
            info = new ProcessStartInfo(ExternalTool.Require(tool));
        }

        foreach (var argument in arguments)
        {
            info.ArgumentList.Add(argument);
        }

        info.UseShellExecute = false;
        info.WorkingDirectory = _directory.Path;
        return info;
    }

    private void Append(string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (_log)
        {
            _log.AppendLine(line);
        }
    }
}
