using System.CommandLine;
using System.Globalization;
using System.Net;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text.Json;
using EdgeUpdater.Protocol;

namespace EdgeUpdater.Cli.Commands;

/// <summary><c>edgeupdater publish</c> and <c>edgeupdater rollout</c>: drive the fleet server over HTTP (docs/server.md).</summary>
internal static class ServerCommands
{
    /// <summary>Builds <c>publish</c>.</summary>
    public static Command CreatePublish()
    {
        var image = new Argument<string?>("image") { Description = "The image file to publish (with --manifest).", Arity = ArgumentArity.ZeroOrOne };
        var manifest = new Option<string?>("--manifest", "-m") { Description = "The signed manifest of the image (edgeupdater release sign)." };
        var keySets = new Option<string[]>("--keyset") { Description = "Key set file(s) to append to the server's chain first, oldest first.", AllowMultipleArgumentsPerToken = true };
        var json = new Option<bool>("--json") { Description = "Print the server's answer as JSON." };
        var server = ServerClient.ServerOption();
        var token = ServerClient.TokenOption();
        var tokenFile = ServerClient.TokenFileOption();
        var command = new Command("publish", "Upload an image and its signed manifest (and key sets) to the server.") { image, manifest, keySets, json, server, token, tokenFile };
        command.SetAction((parse, cancellationToken) => ServerClient.RunAsync(parse, async stdout =>
        {
            var imagePath = parse.GetValue(image);
            var manifestPath = parse.GetValue(manifest);
            var keySetPaths = parse.GetValue(keySets) ?? [];
            if (imagePath is null != manifestPath is null)
            {
                throw new CommandUsageException("an image needs its --manifest, and a --manifest its image");
            }

            if (imagePath is null && keySetPaths.Length == 0)
            {
                throw new CommandUsageException("nothing to publish: give an image and --manifest, or --keyset");
            }

            using var client = await ServerClient.CreateAsync(parse, server, token, tokenFile, cancellationToken).ConfigureAwait(false);
            foreach (var path in keySetPaths)
            {
                using var request = new HttpRequestMessage(HttpMethod.Post, KeySetRoutes.Chain)
                {
                    Content = new ByteArrayContent(await File.ReadAllBytesAsync(path, cancellationToken).ConfigureAwait(false)),
                };
                var (chain, status) = await client.SendAsync(request, KeySetJsonContext.Default.KeySetChain, cancellationToken).ConfigureAwait(false);
                await stdout.WriteLineAsync($"key set {path}: {(status == HttpStatusCode.Created ? "added" : "already held")}, newest version {chain.NewestVersion}").ConfigureAwait(false);
            }

            if (imagePath is null)
            {
                return ExitCodes.Ok;
            }

            await using var imageStream = File.OpenRead(imagePath);
            using var content = new MultipartFormDataContent
            {
                { new ByteArrayContent(await File.ReadAllBytesAsync(manifestPath!, cancellationToken).ConfigureAwait(false)), "manifest", Path.GetFileName(manifestPath!) },
                { new StreamContent(imageStream, 1 << 20), "image", Path.GetFileName(imagePath) },
            };
            using var publish = new HttpRequestMessage(HttpMethod.Post, OperatorRoutes.Releases) { Content = content };
            var (release, published) = await client.SendAsync(publish, OperatorJsonContext.Default.ReleaseInfo, cancellationToken).ConfigureAwait(false);
            if (parse.GetValue(json))
            {
                await stdout.WriteLineAsync(JsonSerializer.Serialize(release, OperatorJsonContext.Default.ReleaseInfo)).ConfigureAwait(false);
            }
            else
            {
                await stdout.WriteLineAsync($"{(published == HttpStatusCode.Created ? "published" : "already published")}: {release.Name} {release.Version}").ConfigureAwait(false);
                await stdout.WriteLineAsync($"manifest {release.ManifestSha256}").ConfigureAwait(false);
                await stdout.WriteLineAsync($"image    {release.ImageSha256} ({release.ImageSize} bytes)").ConfigureAwait(false);
            }

            return ExitCodes.Ok;
        }));
        return command;
    }

    /// <summary>Builds the <c>rollout</c> command group.</summary>
    public static Command CreateRollout()
    {
        var command = new Command("rollout", "Start, watch, pause, resume and abort rollouts.");
        command.Subcommands.Add(CreateStart());
        command.Subcommands.Add(CreateStatus());
        foreach (var action in (RolloutAction[])[RolloutAction.Pause, RolloutAction.Resume, RolloutAction.Abort])
        {
            command.Subcommands.Add(CreateAction(action));
        }

        return command;
    }

    private static Command CreateStart()
    {
        var release = new Option<string?>("--release") { Description = "The release: SHA-256 of its manifest (as printed by publish)." };
        var manifest = new Option<string?>("--manifest", "-m") { Description = "The release by its manifest file (its SHA-256 is computed)." };
        var group = new Option<string>("--group", "-g") { Description = "Device group to update.", Required = true };
        var target = new Option<string?>("--target") { Description = "Device target name (default: the manifest's target or image name)." };
        var phases = new Option<string>("--phases") { Description = "Cumulative percentages per phase, ending at 100.", DefaultValueFactory = _ => "1,10,50,100" };
        var success = new Option<double>("--success-threshold") { Description = "Share of a phase's devices that must succeed before the next (0-1].", DefaultValueFactory = _ => 0.95 };
        var failure = new Option<double>("--failure-threshold") { Description = "Share of failed devices that pauses the rollout [0-1).", DefaultValueFactory = _ => 0.05 };
        var json = new Option<bool>("--json") { Description = "Print the rollout as JSON." };
        var server = ServerClient.ServerOption();
        var token = ServerClient.TokenOption();
        var tokenFile = ServerClient.TokenFileOption();
        var command = new Command("start", "Roll a published release out to a group in phases.") { release, manifest, group, target, phases, success, failure, json, server, token, tokenFile };
        command.SetAction((parse, cancellationToken) => ServerClient.RunAsync(parse, async stdout =>
        {
            string manifestSha256;
            if (parse.GetValue(manifest) is { } manifestPath)
            {
                manifestSha256 = Convert.ToHexStringLower(SHA256.HashData(await File.ReadAllBytesAsync(manifestPath, cancellationToken).ConfigureAwait(false)));
            }
            else
            {
                manifestSha256 = parse.GetValue(release) ?? throw new CommandUsageException("give the release: --release SHA256 or --manifest FILE");
            }

            var percentages = new List<double>();
            foreach (var part in parse.GetValue(phases)!.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
            {
                percentages.Add(double.TryParse(part.TrimEnd('%'), NumberStyles.Float, CultureInfo.InvariantCulture, out var p)
                    ? p
                    : throw new CommandUsageException($"--phases: '{part}' is not a percentage"));
            }

            using var client = await ServerClient.CreateAsync(parse, server, token, tokenFile, cancellationToken).ConfigureAwait(false);
            var body = new RolloutRequest
            {
                ManifestSha256 = manifestSha256,
                Group = parse.GetValue(group)!,
                Target = parse.GetValue(target),
                Phases = percentages,
                SuccessThreshold = parse.GetValue(success),
                FailureThreshold = parse.GetValue(failure),
            };
            using var request = new HttpRequestMessage(HttpMethod.Post, OperatorRoutes.Rollouts) { Content = JsonContent.Create(body, OperatorJsonContext.Default.RolloutRequest) };
            var (rollout, _) = await client.SendAsync(request, OperatorJsonContext.Default.RolloutInfo, cancellationToken).ConfigureAwait(false);
            await WriteAsync(stdout, rollout, parse.GetValue(json)).ConfigureAwait(false);
            return ExitCodes.Ok;
        }));
        return command;
    }

    private static Command CreateStatus()
    {
        var id = new Argument<string?>("rollout") { Description = "Rollout id; without it, every rollout.", Arity = ArgumentArity.ZeroOrOne };
        var json = new Option<bool>("--json") { Description = "Print JSON." };
        var server = ServerClient.ServerOption();
        var token = ServerClient.TokenOption();
        var tokenFile = ServerClient.TokenFileOption();
        var command = new Command("status", "Show one rollout or all of them.") { id, json, server, token, tokenFile };
        command.SetAction((parse, cancellationToken) => ServerClient.RunAsync(parse, async stdout =>
        {
            using var client = await ServerClient.CreateAsync(parse, server, token, tokenFile, cancellationToken).ConfigureAwait(false);
            if (parse.GetValue(id) is { } rolloutId)
            {
                using var one = new HttpRequestMessage(HttpMethod.Get, OperatorRoutes.Rollout(rolloutId));
                var (rollout, _) = await client.SendAsync(one, OperatorJsonContext.Default.RolloutInfo, cancellationToken).ConfigureAwait(false);
                await WriteAsync(stdout, rollout, parse.GetValue(json)).ConfigureAwait(false);
                return ExitCodes.Ok;
            }

            using var all = new HttpRequestMessage(HttpMethod.Get, OperatorRoutes.Rollouts);
            var (rollouts, _) = await client.SendAsync(all, OperatorJsonContext.Default.IReadOnlyListRolloutInfo, cancellationToken).ConfigureAwait(false);
            if (parse.GetValue(json))
            {
                await stdout.WriteLineAsync(JsonSerializer.Serialize(rollouts, OperatorJsonContext.Default.IReadOnlyListRolloutInfo)).ConfigureAwait(false);
            }
            else
            {
                foreach (var rollout in rollouts)
                {
                    await WriteAsync(stdout, rollout, json: false).ConfigureAwait(false);
                }
            }

            return ExitCodes.Ok;
        }));
        return command;
    }

    private static Command CreateAction(RolloutAction action)
    {
        var name = action.ToString().ToLowerInvariant();
        var id = new Argument<string>("rollout") { Description = "Rollout id." };
        var json = new Option<bool>("--json") { Description = "Print the rollout as JSON." };
        var server = ServerClient.ServerOption();
        var token = ServerClient.TokenOption();
        var tokenFile = ServerClient.TokenFileOption();
        var description = action switch
        {
            RolloutAction.Pause => "Stop sending notices and advancing phases.",
            RolloutAction.Resume => "Continue a paused rollout; failed devices are notified again.",
            _ => "Stop a rollout for good.",
        };
        var command = new Command(name, description) { id, json, server, token, tokenFile };
        command.SetAction((parse, cancellationToken) => ServerClient.RunAsync(parse, async stdout =>
        {
            using var client = await ServerClient.CreateAsync(parse, server, token, tokenFile, cancellationToken).ConfigureAwait(false);
            using var request = new HttpRequestMessage(HttpMethod.Post, OperatorRoutes.RolloutAction(parse.GetValue(id)!, action));
            var (rollout, _) = await client.SendAsync(request, OperatorJsonContext.Default.RolloutInfo, cancellationToken).ConfigureAwait(false);
            await WriteAsync(stdout, rollout, parse.GetValue(json)).ConfigureAwait(false);
            return ExitCodes.Ok;
        }));
        return command;
    }

    private static async Task WriteAsync(TextWriter stdout, RolloutInfo rollout, bool json)
    {
        if (json)
        {
            await stdout.WriteLineAsync(JsonSerializer.Serialize(rollout, OperatorJsonContext.Default.RolloutInfo)).ConfigureAwait(false);
            return;
        }

        var state = rollout.State.ToString().ToLowerInvariant();
        var phase = rollout.Phases.Count == 0 ? "-" : $"{rollout.CurrentPhase + 1}/{rollout.Phases.Count} ({rollout.Phases[rollout.CurrentPhase].ToString(CultureInfo.InvariantCulture)}%)";
        await stdout.WriteLineAsync(
            $"{rollout.Id}  {rollout.Name} {rollout.Version} -> group {rollout.Group}  {state}  phase {phase}  "
            + $"{rollout.Succeeded} ok, {rollout.Failed} failed, {rollout.InProgress} in progress of {rollout.GroupSize}").ConfigureAwait(false);
        if (rollout.PauseReason is { } reason)
        {
            await stdout.WriteLineAsync($"  paused: {reason}").ConfigureAwait(false);
        }
    }
}
