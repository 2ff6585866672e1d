using System.Net;
using EdgeUpdater.Server.Tests.Support;
using Xunit;

namespace EdgeUpdater.Server.Tests.Hosting;

public sealed class ConsoleEndpointTests
{
    [Fact]
    public async Task The_console_page_and_its_assets_are_served_without_a_token()
    {
        await using var server = await TestServer.StartAsync();
        foreach (var path in new[] { "/console", "/console/" })
        {
            var html = await server.Anonymous.GetStringAsync(path);
            Assert.Contains("EdgeUpdater fleet", html, StringComparison.Ordinal);
            Assert.Contains("/console/console.js", html, StringComparison.Ordinal);
        }

        Assert.Contains("/v1/rollouts", await server.Anonymous.GetStringAsync("/console/console.js"), StringComparison.Ordinal);
        using var css = await server.Anonymous.GetAsync("/console/console.css");
        Assert.Equal(HttpStatusCode.OK, css.StatusCode);
        Assert.Equal("text/css", css.Content.Headers.ContentType!.MediaType);
    }
}
