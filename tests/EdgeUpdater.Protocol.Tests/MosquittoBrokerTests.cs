using EdgeUpdater.Testing;
using Xunit;

namespace EdgeUpdater.Protocol.Tests;

/// <summary>The broker fixture itself: the server and agent tests rely on it.</summary>
public sealed class MosquittoBrokerTests
{
    [Fact]
    public async Task Broker_accepts_a_publish_and_survives_a_restart()
    {
        await using var broker = await MosquittoBroker.StartAsync(new MosquittoOptions
        {
            Users = new Dictionary<string, string> { ["dev-1"] = "secret" },
            AclFile = "user dev-1\ntopic readwrite edgeupdater/v1/devices/dev-1/#\n",
        }, TestContext.Current.CancellationToken);

        var ok = await ExternalTool.RunAsync("mosquitto_pub",
            ["-h", "127.0.0.1", "-p", broker.Port.ToString(System.Globalization.CultureInfo.InvariantCulture), "-u", "dev-1", "-P", "secret", "-t", "edgeupdater/v1/devices/dev-1/status", "-m", "{}"],
            cancellationToken: TestContext.Current.CancellationToken);
        Assert.True(ok.ExitCode == 0, ok.StandardError + broker.Log);

        var refused = await ExternalTool.RunAsync("mosquitto_pub",
            ["-h", "127.0.0.1", "-p", broker.Port.ToString(System.Globalization.CultureInfo.InvariantCulture), "-u", "dev-1", "-P", "wrong", "-t", "x", "-m", "{}"],
            cancellationToken: TestContext.Current.CancellationToken);
        Assert.NotEqual(0, refused.ExitCode);

        await broker.RestartAsync(cancellationToken: TestContext.Current.CancellationToken);
        var again = await ExternalTool.RunAsync("mosquitto_pub",
            ["-h", "127.0.0.1", "-p", broker.Port.ToString(System.Globalization.CultureInfo.InvariantCulture), "-u", "dev-1", "-P", "secret", "-t", "edgeupdater/v1/devices/dev-1/status", "-m", "{}"],
            cancellationToken: TestContext.Current.CancellationToken);
        Assert.Equal(0, again.ExitCode);
    }
}
