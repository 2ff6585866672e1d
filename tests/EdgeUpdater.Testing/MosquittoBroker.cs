using System.Diagnostics;
using System.Text;

namespace EdgeUpdater.Testing;

/// <summary>Options for a <see cref="MosquittoBroker"/> a test starts.</summary>
public sealed record MosquittoOptions
{
    /// <summary>Users and passwords; when empty, anonymous clients are allowed.</summary>
    public IReadOnlyDictionary<string, string> Users { get; init; } = new Dictionary<string, string>();

    /// <summary>Contents of a mosquitto ACL file, or null for none.</summary>
    public string? AclFile { get; init; }

    /// <summary>Extra lines appended to mosquitto.conf.</summary>
    public string ExtraConfig { get; init; } = string.Empty;
}

/// <summary>
/// A real mosquitto broker on a free loopback port, with its own config, password and ACL files in a
/// temp directory. Dispose stops it. <see cref="RestartAsync"/> stops and starts it on the same port,
/// for tests of clients riding out a broker restart.
/// </summary>
public sealed class MosquittoBroker : IAsyncDisposable
{
    private readonly TempDirectory _directory = new("mosquitto");
    private readonly StringBuilder _log = new();
    private Process? _process;

    private MosquittoBroker(int port)
    {
        Port = port;
    }

    /// <summary>TCP port on 127.0.0.1.</summary>
    public int Port { get; }

    /// <summary>What the broker logged so far (for assertion messages).</summary>
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

    /// <summary>Writes the configuration and starts mosquitto; returns once it accepts connections.</summary>
    public static async Task<MosquittoBroker> StartAsync(MosquittoOptions? options = null, CancellationToken cancellationToken = default)
    {
        options ??= new MosquittoOptions();
        var broker = new MosquittoBroker(FreePort.Next());
        await broker.WriteConfigAsync(options, cancellationToken);
        await broker.StartProcessAsync(cancellationToken);
        return broker;
    }

    /// <summary>Stops the broker (SIGKILL, like a crash) and starts it again on the same port.</summary>
    public async Task RestartAsync(TimeSpan downtime = default, CancellationToken cancellationToken = default)
    {
        await StopAsync();
        if (downtime > TimeSpan.Zero)
        {
            await Task.Delay(downtime, cancellationToken);
        }

        await StartProcessAsync(cancellationToken);
    }

    /// <summary>Stops the broker without restarting it.</summary>
    public async Task StopAsync()
    {
        if (_process is { HasExited: false })
        {
            _process.Kill();
            await _process.WaitForExitAsync();
        }

        _process?.Dispose();
        _process = null;
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        await StopAsync();
        _directory.Dispose();
    }

    private async Task WriteConfigAsync(MosquittoOptions options, CancellationToken cancellationToken)
    {
        var config = new StringBuilder();
        config.AppendLine($"listener {Port} 127.0.0.1");
        config.AppendLine("persistence false");
        if (Privileges.IsRoot)
        {
            // Otherwise mosquitto drops to user 'mosquitto', which cannot read this private temp dir.
            config.AppendLine("user root");
        }

        config.AppendLine("log_dest stderr");
        config.AppendLine("log_type error");
        config.AppendLine("log_type warning");
        config.AppendLine("log_type notice");
        if (options.Users.Count > 0)
        {
            var passwordFile = _directory.Combine("passwd");
            await File.WriteAllTextAsync(passwordFile, string.Empty, cancellationToken);
            foreach (var (user, password) in options.Users)
            {
                await ExternalTool.RunCheckedAsync("mosquitto_passwd", ["-b", passwordFile, user, password], cancellationToken: cancellationToken);
            }

            // mosquitto 2.x refuses files others can read.
            File.SetUnixFileMode(passwordFile, UnixFileMode.UserRead | UnixFileMode.UserWrite);
            config.AppendLine("allow_anonymous false");
            config.AppendLine($"password_file {passwordFile}");
        }
        else
        {
            config.AppendLine("allow_anonymous true");
        }

        if (options.AclFile is not null)
        {
            var aclFile = _directory.Combine("acl");
            await File.WriteAllTextAsync(aclFile, options.AclFile, cancellationToken);
            File.SetUnixFileMode(aclFile, UnixFileMode.UserRead | UnixFileMode.UserWrite);
            config.AppendLine($"acl_file {aclFile}");
        }

        config.AppendLine(options.ExtraConfig);
        await File.WriteAllTextAsync(_directory.Combine("mosquitto.conf"), config.ToString(), cancellationToken);
    }

    private async Task StartProcessAsync(CancellationToken cancellationToken)
    {
        var info = new ProcessStartInfo(ExternalTool.Require("mosquitto"))
        {
            RedirectStandardError = true,
            RedirectStandardOutput = true,
            UseShellExecute = false,
        };
        info.ArgumentList.Add("-c");
        info.ArgumentList.Add(_directory.Combine("mosquitto.conf"));
        var process = Process.Start(info) ?? throw new InvalidOperationException("could not start mosquitto");
        process.ErrorDataReceived += (_, e) => Append(e.Data);
        process.OutputDataReceived += (_, e) => Append(e.Data);
        process.BeginErrorReadLine();
        process.BeginOutputReadLine();
        _process = process;
        var listening = FreePort.WaitUntilListeningAsync(Port, TimeSpan.FromSeconds(10), cancellationToken);
        var exited = process.WaitForExitAsync(cancellationToken);
        if (await Task.WhenAny(listening, exited) == exited || !listening.IsCompletedSuccessfully)
        {
            try
            {
                await listening;
            }
            catch (System.Net.Sockets.SocketException)
            {
            }

            throw new InvalidOperationException($"mosquitto did not start listening on {Port}:\n{Log}");
        }
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
