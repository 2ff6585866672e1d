using System.CommandLine;
using EdgeUpdater.Cli.Commands;
using EdgeUpdater.Server.Hosting;
using EdgeUpdater.Testing;
using EdgeUpdater.Trust.Envelopes;
using EdgeUpdater.Trust.Keys;
using EdgeUpdater.Trust.KeySets;
using EdgeUpdater.Trust.Manifests;
using EdgeUpdater.Trust.Policy;
using EdgeUpdater.Trust.Versioning;
using Microsoft.Extensions.Logging;
using Xunit;

namespace EdgeUpdater.Cli.Tests;

/// <summary><c>edgeupdater publish</c> and <c>rollout</c> against a real in-process server.</summary>
public sealed class ServerCommandsTests : IAsyncLifetime
{
    private const string Token = "cli-test-operator-token-0123456789";
    private readonly TempDirectory _dir = new("cli-server");
    private readonly SigningKey _root = SigningKey.Generate();
    private readonly SigningKey _release = SigningKey.Generate();
    private ServerHost _server = null!;

    public async ValueTask InitializeAsync()
    {
        await PublicKeyFile.WriteAsync(_dir.Combine("root.pub"), _root.PublicKey);
        var keySet = new KeySet
        {
            Version = 1,
            Created = DateTimeOffset.UtcNow.AddDays(-1),
            Expires = DateTimeOffset.UtcNow.AddDays(30),
            RootThreshold = 1,
            ReleaseThreshold = 1,
            Keys = [KeySetEntry.For(_root.PublicKey, KeyRole.Root), KeySetEntry.For(_release.PublicKey, KeyRole.Release, DateTimeOffset.UtcNow.AddDays(30), false)],
        };
        await File.WriteAllBytesAsync(_dir.Combine("keyset-v1.json"), SignedEnvelope.Create(PayloadTypes.KeySet, keySet.ToPayloadBytes(), [_root]).ToJsonBytes());
        _server = await ServerHost.StartAsync(new ServerOptions
        {
            DataDirectory = _dir.Combine("data"),
            Http = { Urls = "http://127.0.0.1:0" },
            Mqtt = { BindAddress = "127.0.0.1", Port = 0 },
            Operator = { Tokens = [Token] },
            Trust = { RootKeyFiles = [_dir.Combine("root.pub")] },
            LogLevel = LogLevel.Warning,
        });
    }

    public async ValueTask DisposeAsync()
    {
        await _server.DisposeAsync();
        _root.Dispose();
        _release.Dispose();
        _dir.Dispose();
    }

    [Fact]
    public async Task Publish_uploads_the_key_set_and_a_release_then_rollout_commands_drive_it()
    {
        var image = await BuildImageAsync("demo", "1.2.0");
        var manifest = await SignAsync(image, "demo", "1.2.0", _release);

        var published = await SucceedAsync("publish", image, "--manifest", manifest, "--keyset", _dir.Combine("keyset-v1.json"));
        Assert.Contains("key set", published, StringComparison.Ordinal);
        Assert.Contains("published: demo 1.2.0", published, StringComparison.Ordinal);
        Assert.Contains("already published", await SucceedAsync("publish", image, "--manifest", manifest), StringComparison.Ordinal);

        var started = await SucceedAsync("rollout", "start", "--manifest", manifest, "--group", "lab", "--phases", "50,100");
        var id = started.Split(' ', 2)[0];
        Assert.StartsWith("r-", id, StringComparison.Ordinal);
        Assert.Contains("running", started, StringComparison.Ordinal);
        Assert.Contains("paused", await SucceedAsync("rollout", "pause", id), StringComparison.Ordinal);
        Assert.Contains(id, await SucceedAsync("rollout", "status"), StringComparison.Ordinal);
        Assert.Contains("running", await SucceedAsync("rollout", "resume", id), StringComparison.Ordinal);
        Assert.Contains("aborted", await SucceedAsync("rollout", "abort", id), StringComparison.Ordinal);
        var (exit, _, error) = await RunAsync("rollout", "abort", id);
        Assert.Equal(ExitCodes.Rejected, exit);
        Assert.Contains("invalid-transition", error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_refused_signature_exits_with_the_verification_code_and_a_bad_token_with_rejected()
    {
        await SucceedAsync("publish", "--keyset", _dir.Combine("keyset-v1.json"));
        var image = await BuildImageAsync("demo", "1.0.0");
        using var stranger = SigningKey.Generate();
        var manifest = await SignAsync(image, "demo", "1.0.0", stranger);
        var (exit, _, error) = await RunAsync("publish", image, "--manifest", manifest);
        Assert.Equal(ExitCodes.VerificationFailed, exit);
        Assert.Contains("unknown-key", error, StringComparison.Ordinal);

        var root = Root();
        using var output = new StringWriter();
        using var errors = new StringWriter();
        var code = await root.Parse(["rollout", "status", "--server", _server.HttpUrl.ToString(), "--token", "wrong-token-0123456789"])
            .InvokeAsync(new InvocationConfiguration { Output = output, Error = errors }, TestContext.Current.CancellationToken);
        Assert.Equal(ExitCodes.Rejected, code);
        Assert.Contains("unauthorized", errors.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Delta_apply_reads_the_servers_delta_url_as_it_is_generated_and_then_from_its_cache()
    {
        await SucceedAsync("publish", "--keyset", _dir.Combine("keyset-v1.json"));
        var v1 = await BuildImageAsync("demo", "1.0.0");
        var v2 = await BuildImageAsync("demo", "1.1.0");
        await SucceedAsync("publish", v1, "--manifest", await SignAsync(v1, "demo", "1.0.0", _release));
        await SucceedAsync("publish", v2, "--manifest", await SignAsync(v2, "demo", "1.1.0", _release));
        var from = (await PayloadVerifier.ComputeFileAsync(v1, TestContext.Current.CancellationToken)).Sha256;
        var to = (await PayloadVerifier.ComputeFileAsync(v2, TestContext.Current.CancellationToken)).Sha256;
        var url = new Uri(_server.HttpUrl, $"/v1/deltas/{from}/{to}?level=fast").ToString();

        // The first request is answered while the delta is generated (chunked, no length); the second from the cache.
        foreach (var attempt in new[] { "generated", "cached" })
        {
            var output = _dir.Combine($"applied-{attempt}.sqfs");
            var root = new RootCommand { DeltaCommands.Create() };
            using var stdout = new StringWriter();
            using var stderr = new StringWriter();
            var exit = await root.Parse(["delta", "apply", v1, url, "-o", output]).InvokeAsync(new InvocationConfiguration { Output = stdout, Error = stderr }, TestContext.Current.CancellationToken);
            Assert.True(exit == ExitCodes.Ok, $"{attempt}: {stderr}");
            Assert.Equal(await File.ReadAllBytesAsync(v2, TestContext.Current.CancellationToken), await File.ReadAllBytesAsync(output, TestContext.Current.CancellationToken));
        }
    }

    private async Task<string> BuildImageAsync(string name, string version)
    {
        var tree = _dir.Combine($"tree-{version}");
        Directory.CreateDirectory(Path.Combine(tree, "root"));
        await File.WriteAllTextAsync(Path.Combine(tree, "config.json"), $$"""{"name": "{{name}}", "version": "{{version}}"}""", TestContext.Current.CancellationToken);
        await File.WriteAllTextAsync(Path.Combine(tree, "root", "hello"), "hello " + version, TestContext.Current.CancellationToken);
        var image = _dir.Combine($"{name}-{version}.sqfs");
        await ExternalTool.RunCheckedAsync("mksquashfs", [tree, image, "-noappend", "-all-root", "-quiet", "-no-progress"], cancellationToken: TestContext.Current.CancellationToken);
        return image;
    }

    private async Task<string> SignAsync(string image, string name, string version, SigningKey key)
    {
        var digest = await PayloadVerifier.ComputeFileAsync(image, TestContext.Current.CancellationToken);
        var manifest = new ReleaseManifest
        {
            Name = name,
            Version = SemanticVersion.Parse(version),
            TargetKind = TargetKind.App,
            ImageSha256 = digest.Sha256,
            ImageSize = digest.Size,
            Hardware = ["board"],
            Architectures = ["x64"],
            Created = DateTimeOffset.UtcNow.AddMinutes(-1),
            Expires = DateTimeOffset.UtcNow.AddDays(7),
            AllowDowngrade = false,
        };
        var path = _dir.Combine($"{name}-{version}-{key.KeyId[..8]}.manifest");
        await File.WriteAllBytesAsync(path, SignedEnvelope.Create(PayloadTypes.ReleaseManifest, manifest.ToPayloadBytes(), [key]).ToJsonBytes(), TestContext.Current.CancellationToken);
        return path;
    }

    private static RootCommand Root()
    {
        var root = new RootCommand("edgeupdater (test)");
        root.Subcommands.Add(ServerCommands.CreatePublish());
        root.Subcommands.Add(ServerCommands.CreateRollout());
        return root;
    }

    private async Task<(int Exit, string Output, string Error)> RunAsync(params string[] args)
    {
        using var output = new StringWriter();
        using var error = new StringWriter();
        var exit = await Root().Parse([.. args, "--server", _server.HttpUrl.ToString(), "--token", Token])
            .InvokeAsync(new InvocationConfiguration { Output = output, Error = error }, TestContext.Current.CancellationToken);
        return (exit, output.ToString(), error.ToString());
    }

    private async Task<string> SucceedAsync(params string[] args)
    {
        var (exit, output, error) = await RunAsync(args);
        Assert.True(exit == ExitCodes.Ok, $"edgeupdater {string.Join(' ', args)} exited {exit}\n{output}\n{error}");
        return output;
    }
}
