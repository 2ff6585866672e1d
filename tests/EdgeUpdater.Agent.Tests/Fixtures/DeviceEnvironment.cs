using EdgeUpdater.Protocol;
using EdgeUpdater.Testing;
using Xunit;

namespace EdgeUpdater.Agent.Tests.Fixtures;

/// <summary>Broker, repository, signer, sandbox and status probe for one test.</summary>
internal sealed class DeviceEnvironment : IAsyncDisposable
{
    private readonly HttpClient _http = new() { Timeout = TimeSpan.FromSeconds(5) };

    private DeviceEnvironment(MosquittoBroker broker, RepositoryServer server, StatusProbe probe, ReleaseSigner signer, AgentSandbox sandbox)
    {
        Broker = broker;
        Server = server;
        Probe = probe;
        Signer = signer;
        Sandbox = sandbox;
        HttpPort = FreePort.Next();
    }

    public MosquittoBroker Broker { get; }

    public RepositoryServer Server { get; }

    public StatusProbe Probe { get; private set; }

    public ReleaseSigner Signer { get; }

    public AgentSandbox Sandbox { get; }

    public int HttpPort { get; }

    public static async Task<DeviceEnvironment> CreateAsync(Func<AgentSandbox, AgentSandbox>? customize = null)
    {
        var broker = await MosquittoBroker.StartAsync();
        var server = await RepositoryServer.StartAsync();
        var probe = await StatusProbe.ConnectAsync(broker.Port);
        var signer = new ReleaseSigner();
        var sandbox = new AgentSandbox("127.0.0.1", broker.Port, server.Url, signer);
        return new DeviceEnvironment(broker, server, probe, signer, customize?.Invoke(sandbox) ?? sandbox);
    }

    /// <param name="v2Health">The new version's health check (default: an HTTP probe that passes).</param>
    /// <param name="v2Filler">Incompressible bytes only the new version has.</param>
    /// <param name="sharedFiller">Incompressible bytes both versions have (a delta copies them).</param>
    public async Task<(string V1, string V2)> BuildPairAsync(System.Text.Json.Nodes.JsonObject? v2Health = null, int v2Filler = 0, int sharedFiller = 0)
    {
        var v1 = await TestImages.BuildAsync(Sandbox.ImagesDirectory, new TestImageOptions { Version = "1.0.0", HttpPort = HttpPort, SharedFillerBytes = sharedFiller });
        var v2 = await TestImages.BuildAsync(Sandbox.ImagesDirectory, new TestImageOptions { Version = "2.0.0", HttpPort = HttpPort, HealthCheck = v2Health, FillerBytes = v2Filler, SharedFillerBytes = sharedFiller });
        return (v1, v2);
    }

    /// <summary>Generates the delta from <paramref name="from"/> to <paramref name="to"/> and serves it; returns its path.</summary>
    public async Task<string> PublishDeltaAsync(string from, string to, DeltaDelivery delivery = DeltaDelivery.Cached)
    {
        var delta = await TestDeltas.CreateAsync(from, to, Path.Combine(Sandbox.ImagesDirectory, $"{Path.GetFileNameWithoutExtension(from)}-{Path.GetFileNameWithoutExtension(to)}.eud"));
        Server.AddDelta(TestDeltas.Sha256(from), TestDeltas.Sha256(to), delta, delivery);
        return delta;
    }

    public SignedManifest Publish(string image, string version, bool allowDowngrade = false)
    {
        var manifest = Signer.Sign(image, version, allowDowngrade: allowDowngrade);
        Server.AddRelease(manifest, image);
        return manifest;
    }

    /// <summary>A fresh probe (after a broker restart); the retained status arrives on it first.</summary>
    public async Task ReconnectProbeAsync()
    {
        await Probe.DisposeAsync();
        Probe = await StatusProbe.ConnectAsync(Broker.Port);
    }

    /// <summary>Waits for a status; on time-out the message carries everything the agents printed.</summary>
    public async Task<DeviceStatus> WaitForAsync(Func<DeviceStatus, bool> predicate, TimeSpan timeout, string what)
    {
        try
        {
            return await Probe.WaitForAsync(predicate, timeout, what);
        }
        catch (TimeoutException e)
        {
            throw new TimeoutException($"{e.Message}\nagent output:\n{Sandbox.Output}", e);
        }
    }

    /// <summary>Polls <paramref name="condition"/> (the agent's log, its state file) until it holds.</summary>
    public async Task WaitUntilAsync(Func<bool> condition, TimeSpan timeout, string what)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (!condition())
        {
            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"not {what} within {timeout.TotalSeconds} s\nagent output:\n{Sandbox.Output}");
            }

            await Task.Delay(50, TestContext.Current.CancellationToken);
        }
    }

    /// <summary>Waits until the running workload serves <paramref name="expected"/> at /version.txt; returns what it served last.</summary>
    public async Task<string> WaitForServedVersionAsync(string expected, TimeSpan? timeout = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(20));
        var last = "(nothing)";
        while (DateTime.UtcNow < deadline)
        {
            try
            {
                last = await _http.GetStringAsync(new Uri($"http://127.0.0.1:{HttpPort}/version.txt"));
                if (last == expected)
                {
                    return last;
                }
            }
            catch (HttpRequestException e)
            {
                last = e.Message;
            }

            await Task.Delay(100);
        }

        return last;
    }

    public async ValueTask DisposeAsync()
    {
        await Sandbox.DisposeAsync();
        await Probe.DisposeAsync();
        await Server.DisposeAsync();
        await Broker.DisposeAsync();
        Signer.Dispose();
        _http.Dispose();
    }
}
