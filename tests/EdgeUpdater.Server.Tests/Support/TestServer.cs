using System.Net.Http.Headers;
using System.Net.Http.Json;
using EdgeUpdater.Protocol;
using EdgeUpdater.Server.Deltas;
using EdgeUpdater.Server.Hosting;
using EdgeUpdater.Testing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace EdgeUpdater.Server.Tests.Support;

/// <summary>
/// An in-process server on loopback (HTTP and embedded MQTT on free ports, SQLite in a temp data
/// directory unless told otherwise), with the delta seam replaced by a test stand-in (unless
/// <c>libraryDeltas</c>: then the real delta library generates), test trust keys, and an
/// HttpClient that carries the operator token. <see cref="RestartAsync"/> stops it and starts a new
/// one on the same data directory and database.
/// </summary>
internal sealed class TestServer : IAsyncDisposable
{
    public const string Token = "test-operator-token-0123456789";
    private readonly Action<ServerOptions>? _configure;
    private readonly bool _ownsData;
    private readonly bool _libraryDeltas;
    private readonly bool _ownsTrust;

    private TestServer(TempDirectory data, bool ownsData, Action<ServerOptions>? configure, TestDeltaGenerator deltas, bool libraryDeltas, TestTrust? trust)
    {
        _libraryDeltas = libraryDeltas;
        _ownsTrust = trust is null;
        Trust = trust ?? new TestTrust();
        Data = data;
        _ownsData = ownsData;
        _configure = configure;
        Deltas = deltas;
    }

    public TempDirectory Data { get; }

    /// <summary>The stand-in generator (unused when the server runs the delta library).</summary>
    public TestDeltaGenerator Deltas { get; }

    /// <summary>The root and release keys; the server trusts the root and holds key set v1.</summary>
    public TestTrust Trust { get; }

    public ServerHost Host { get; private set; } = null!;

    public HttpClient Http { get; private set; } = null!;

    /// <summary>The same server without the operator token.</summary>
    public HttpClient Anonymous { get; private set; } = null!;

    /// <param name="trust">Keys shared with another server (replicas of one database); the caller disposes them.</param>
    public static async Task<TestServer> StartAsync(Action<ServerOptions>? configure = null, TempDirectory? data = null, TestDeltaGenerator? deltas = null, bool libraryDeltas = false, TestTrust? trust = null)
    {
        var server = new TestServer(data ?? new TempDirectory("server"), data is null, configure, deltas ?? new TestDeltaGenerator(), libraryDeltas, trust);
        await server.StartHostAsync();
        return server;
    }

    public async Task RestartAsync()
    {
        await StopHostAsync();
        await StartHostAsync();
    }

    public async Task<ReleaseInfo> PublishAsync(TestImage image)
    {
        using var content = Multipart(Trust.Sign(image), image.Path);
        using var response = await Http.PostAsync(OperatorRoutes.Releases, content);
        var body = await response.Content.ReadAsStringAsync();
        Xunit.Assert.True(response.IsSuccessStatusCode, $"publish failed: {(int)response.StatusCode} {body}");
        return System.Text.Json.JsonSerializer.Deserialize(body, OperatorJsonContext.Default.ReleaseInfo)!;
    }

    public static MultipartFormDataContent Multipart(byte[] manifest, string imagePath)
    {
        var content = new MultipartFormDataContent();
        content.Add(new ByteArrayContent(manifest), "manifest", "manifest");
        content.Add(new StreamContent(File.OpenRead(imagePath)), "image", "image.sqfs");
        return content;
    }

    public async Task<DeviceCredentialInfo> IssueCredentialsAsync(string deviceId, string? group)
    {
        using var response = await Http.PutAsJsonAsync(OperatorRoutes.DeviceCredentials(deviceId), new DeviceCredentialRequest { Group = group }, OperatorJsonContext.Default.DeviceCredentialRequest);
        response.EnsureSuccessStatusCode();
        return (await response.Content.ReadFromJsonAsync(OperatorJsonContext.Default.DeviceCredentialInfo))!;
    }

    public async ValueTask DisposeAsync()
    {
        await StopHostAsync();
        if (_ownsData)
        {
            Data.Dispose();
        }

        if (_ownsTrust)
        {
            Trust.Dispose();
        }
    }

    private async Task StartHostAsync()
    {
        await Trust.WriteRootAsync(Data.Path);
        var options = new ServerOptions
        {
            DataDirectory = Data.Path,
            Http = { Urls = "http://127.0.0.1:0" },
            Mqtt = { BindAddress = "127.0.0.1", Port = 0 },
            Operator = { Tokens = [Token] },
            Rollouts = { TickInterval = TimeSpan.FromMilliseconds(200) },
            LogLevel = LogLevel.Warning,
        };
        _configure?.Invoke(options);
        Host = await ServerHost.StartAsync(
            options,
            services =>
            {
                if (!_libraryDeltas)
                {
                    services.AddSingleton<IDeltaGenerator>(Deltas);
                }
            });
        Http = new HttpClient { BaseAddress = Host.HttpUrl, Timeout = TimeSpan.FromSeconds(60) };
        Http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", Token);
        using var keySet = await Http.PostAsync(KeySetRoutes.Chain, new ByteArrayContent(Trust.KeySetV1));
        keySet.EnsureSuccessStatusCode();
        Anonymous = new HttpClient { BaseAddress = Host.HttpUrl, Timeout = TimeSpan.FromSeconds(60) };
    }

    private async Task StopHostAsync()
    {
        Http?.Dispose();
        Anonymous?.Dispose();
        if (Host is not null)
        {
            await Host.DisposeAsync();
        }
    }
}
