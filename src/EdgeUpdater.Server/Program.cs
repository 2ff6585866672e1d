using EdgeUpdater.Server.Hosting;

// edgeupdater-server: parse options, start the host, run until SIGINT/SIGTERM.
if (args.Contains("--help") || args.Contains("-h"))
{
    Console.WriteLine(ServerOptionsLoader.Usage);
    return 0;
}

ServerOptions options;
try
{
    options = ServerOptionsLoader.Load(args);
    options.Validate();
}
catch (ServerConfigurationException e)
{
    await Console.Error.WriteLineAsync($"edgeupdater-server: {e.Message}").ConfigureAwait(false);
    await Console.Error.WriteLineAsync("Run 'edgeupdater-server --help' for the options.").ConfigureAwait(false);
    return 2;
}

await using var host = await ServerHost.StartAsync(options).ConfigureAwait(false);
await host.WaitForShutdownAsync().ConfigureAwait(false);
return 0;
