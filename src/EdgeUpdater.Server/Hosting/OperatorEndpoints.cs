using System.Text.Json;
using EdgeUpdater.Protocol;
using EdgeUpdater.Server.Fleet;
using EdgeUpdater.Server.Mqtt;
using EdgeUpdater.Server.Releases;
using EdgeUpdater.Server.Rollouts;
using EdgeUpdater.Server.Storage;

namespace EdgeUpdater.Server.Hosting;

/// <summary>The operator API (bearer token): releases, devices, credentials, commands, rollouts.</summary>
internal static class OperatorEndpoints
{
    public static void Map(IEndpointRouteBuilder app)
    {
        var api = app.MapGroup(string.Empty).AddEndpointFilter<OperatorTokenFilter>();

        api.MapPost(OperatorRoutes.Releases, (HttpRequest request, ReleaseService releases, CancellationToken ct) => releases.PublishAsync(request, ct));
        api.MapGet(OperatorRoutes.Releases, async (IFleetStore store, CancellationToken ct) =>
            Results.Json(await store.ListReleasesAsync(ct).ConfigureAwait(false), OperatorJsonContext.Default.IReadOnlyListReleaseInfo));
        api.MapGet(OperatorRoutes.Releases + "/{manifestSha256}", async (string manifestSha256, IFleetStore store, CancellationToken ct) =>
            await store.GetReleaseAsync(manifestSha256, ct).ConfigureAwait(false) is { } release
                ? Results.Json(release, OperatorJsonContext.Default.ReleaseInfo)
                : ApiResults.Error(404, "unknown-release", $"no release with manifest SHA-256 {manifestSha256}"));

        api.MapGet(OperatorRoutes.Devices, async (string? group, IFleetStore store, CancellationToken ct) =>
            Results.Json(await store.ListDevicesAsync(group, ct).ConfigureAwait(false), OperatorJsonContext.Default.IReadOnlyListDeviceInfo));
        api.MapGet(OperatorRoutes.Devices + "/{deviceId}", async (string deviceId, IFleetStore store, CancellationToken ct) =>
            await store.GetDeviceAsync(deviceId, ct).ConfigureAwait(false) is { } device
                ? Results.Json(device, OperatorJsonContext.Default.DeviceInfo)
                : ApiResults.Error(404, "unknown-device", $"no device '{deviceId}' has reported yet"));
        api.MapPut(OperatorRoutes.Devices + "/{deviceId}/credentials", IssueCredentialsAsync);
        api.MapDelete(OperatorRoutes.Devices + "/{deviceId}/credentials", async (string deviceId, IFleetStore store, CancellationToken ct) =>
            await store.DeleteCredentialAsync(deviceId, ct).ConfigureAwait(false)
                ? Results.NoContent()
                : ApiResults.Error(404, "unknown-device", $"device '{deviceId}' has no credentials"));
        api.MapPost(OperatorRoutes.Devices + "/{deviceId}/commands", SendCommandAsync);

        api.MapGet(OperatorRoutes.Rollouts, async (RolloutEngine engine, CancellationToken ct) =>
            Results.Json(await engine.ListAsync(ct).ConfigureAwait(false), OperatorJsonContext.Default.IReadOnlyListRolloutInfo));
        api.MapPost(OperatorRoutes.Rollouts, StartRolloutAsync);
        api.MapGet(OperatorRoutes.Rollouts + "/{rolloutId}", async (string rolloutId, RolloutEngine engine, CancellationToken ct) =>
            await engine.GetAsync(rolloutId, ct).ConfigureAwait(false) is { } rollout
                ? Results.Json(rollout, OperatorJsonContext.Default.RolloutInfo)
                : ApiResults.Error(404, "unknown-rollout", $"no rollout '{rolloutId}'"));
        api.MapPost(OperatorRoutes.Rollouts + "/{rolloutId}/{action}", ApplyRolloutActionAsync);

        api.MapPost(KeySetRoutes.Chain, AddKeySetAsync);
        app.MapMethods(KeySetRoutes.Chain, [HttpMethods.Get, HttpMethods.Head], GetKeySetChainAsync);

        api.MapGet(OperatorRoutes.MosquittoAcl, async (IFleetStore store, DeviceAcl acl, ServerOptions options, CancellationToken ct) =>
        {
            var credentials = await store.ListCredentialsAsync(ct).ConfigureAwait(false);
            var serverUser = options.Mqtt.Mode == BrokerMode.External && options.Mqtt.Username is { } u ? u : EmbeddedBroker.ServerUsername;
            return Results.Text(acl.ToMosquittoAcl(serverUser, credentials.Select(c => (c.DeviceId, c.Group))), "text/plain");
        });
    }

    private static async Task<IResult> IssueCredentialsAsync(string deviceId, HttpRequest request, DeviceCredentials credentials, CancellationToken ct)
    {
        var body = request.ContentLength is > 0 || request.Headers.TransferEncoding.Count > 0
            ? await ReadAsync(request, OperatorJsonContext.Default.DeviceCredentialRequest, ct).ConfigureAwait(false)
            : new DeviceCredentialRequest();
        if (body is null)
        {
            return ApiResults.Error(400, "bad-request", "the body must be a JSON object like {\"group\": \"lab\"}");
        }

        try
        {
            var issued = await credentials.IssueAsync(deviceId, body.Group, ct).ConfigureAwait(false);
            return Results.Json(issued, OperatorJsonContext.Default.DeviceCredentialInfo, statusCode: 201);
        }
        catch (ArgumentException e)
        {
            return ApiResults.Error(400, "bad-device-id", e.Message);
        }
    }

    private static async Task<IResult> SendCommandAsync(
        string deviceId,
        HttpRequest request,
        IFleetStore store,
        IFleetPublisher publisher,
        MqttTopics topics,
        TimeProvider time,
        CancellationToken ct)
    {
        var body = await ReadAsync(request, OperatorJsonContext.Default.DeviceCommandRequest, ct).ConfigureAwait(false);
        if (body is null)
        {
            return ApiResults.Error(400, "bad-request", "the body must be a JSON object like {\"kind\": \"check-now\"}");
        }

        if (!MqttTopics.IsValidSegment(deviceId) || await store.GetDeviceAsync(deviceId, ct).ConfigureAwait(false) is null)
        {
            return ApiResults.Error(404, "unknown-device", $"no device '{deviceId}' has reported yet");
        }

        var command = new DeviceCommand { Id = $"c-{Guid.NewGuid():N}", Kind = body.Kind, Target = body.Target, IssuedAt = time.GetUtcNow() };
        await store.AddCommandAsync(new CommandRecord(command.Id, deviceId, command.Kind, command.Target, command.IssuedAt), ct).ConfigureAwait(false);
        try
        {
            await publisher.PublishAsync(topics.DeviceCommand(deviceId), JsonSerializer.SerializeToUtf8Bytes(command, ProtocolJsonContext.Default.DeviceCommand), retain: false, ct).ConfigureAwait(false);
        }
        catch (Exception e) when (e is MQTTnet.Exceptions.MqttCommunicationException or InvalidOperationException)
        {
            return ApiResults.Error(503, "broker-unavailable", $"the command was recorded but could not be published: {e.Message}");
        }

        return Results.Json(command, OperatorJsonContext.Default.DeviceCommand, statusCode: 202);
    }

    private static async Task<IResult> StartRolloutAsync(HttpRequest request, IFleetStore store, RolloutEngine engine, CancellationToken ct)
    {
        var body = await ReadAsync(request, OperatorJsonContext.Default.RolloutRequest, ct).ConfigureAwait(false);
        if (body is null)
        {
            return ApiResults.Error(400, "bad-request", "the body must be a rollout request: {\"manifestSha256\": ..., \"group\": ...}");
        }

        if (!HttpRoutes.IsSha256(body.ManifestSha256) || await store.GetReleaseAsync(body.ManifestSha256, ct).ConfigureAwait(false) is not { } release)
        {
            return ApiResults.Error(404, "unknown-release", $"no release with manifest SHA-256 '{body.ManifestSha256}'");
        }

        try
        {
            var rollout = await engine.CreateAsync(body, release, ct).ConfigureAwait(false);
            return Results.Json(rollout, OperatorJsonContext.Default.RolloutInfo, statusCode: 201);
        }
        catch (ArgumentException e)
        {
            return ApiResults.Error(400, "invalid-rollout", e.Message);
        }
        catch (NotRolloutLeaderException e)
        {
            return ApiResults.Error(503, "not-leader", e.Message);
        }
    }

    private static async Task<IResult> ApplyRolloutActionAsync(string rolloutId, string action, RolloutEngine engine, CancellationToken ct)
    {
        RolloutAction? parsed = action switch
        {
            "pause" => RolloutAction.Pause,
            "resume" => RolloutAction.Resume,
            "abort" => RolloutAction.Abort,
            _ => null,
        };
        if (parsed is null)
        {
            return ApiResults.Error(404, "unknown-action", $"'{action}' is not a rollout action (pause, resume, abort)");
        }

        try
        {
            return await engine.ApplyAsync(rolloutId, parsed.Value, ct).ConfigureAwait(false) is { } rollout
                ? Results.Json(rollout, OperatorJsonContext.Default.RolloutInfo)
                : ApiResults.Error(404, "unknown-rollout", $"no rollout '{rolloutId}'");
        }
        catch (InvalidOperationException e)
        {
            return ApiResults.Error(409, "invalid-transition", e.Message);
        }
        catch (NotRolloutLeaderException e)
        {
            return ApiResults.Error(503, "not-leader", e.Message);
        }
    }

    private static async Task<IResult> AddKeySetAsync(HttpRequest request, TrustStore trust, CancellationToken ct)
    {
        using var buffer = new MemoryStream();
        await request.Body.CopyToAsync(buffer, ct).ConfigureAwait(false);
        if (buffer.Length is 0 or > 1 << 20)
        {
            return ApiResults.Error(400, "bad-request", "the body must be one key set envelope (at most 1 MiB)");
        }

        try
        {
            var (added, keySet) = await trust.AddKeySetAsync(buffer.ToArray(), ct).ConfigureAwait(false);
            return Results.Json(
                new KeySetChain { NewestVersion = keySet.Version },
                KeySetJsonContext.Default.KeySetChain,
                statusCode: added ? 201 : 200);
        }
        catch (ReleaseRejectedException e)
        {
            return ApiResults.Error(e.StatusCode, e.Reason, e.Message);
        }
    }

    /// <summary>Public: the key set chain for devices, revalidated by ETag (the SHA-256 of the answer).</summary>
    private static async Task<IResult> GetKeySetChainAsync(HttpContext context, IFleetStore store, CancellationToken ct)
    {
        var keySets = await store.ListKeySetsAsync(ct).ConfigureAwait(false);
        var chain = new KeySetChain { NewestVersion = keySets.Count == 0 ? 0 : keySets[^1].Version, KeySets = keySets.Select(k => k.Envelope).ToList() };
        var bytes = JsonSerializer.SerializeToUtf8Bytes(chain, KeySetJsonContext.Default.KeySetChain);
        var etag = $"\"{Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(bytes))}\"";
        context.Response.Headers.CacheControl = "no-cache";
        context.Response.Headers.ETag = etag;
        if (context.Request.Headers.IfNoneMatch.ToString() == etag)
        {
            return Results.StatusCode(304);
        }

        return Results.Bytes(bytes, "application/json");
    }

    private static async Task<T?> ReadAsync<T>(HttpRequest request, System.Text.Json.Serialization.Metadata.JsonTypeInfo<T> type, CancellationToken ct)
        where T : class
    {
        try
        {
            return await JsonSerializer.DeserializeAsync(request.Body, type, ct).ConfigureAwait(false);
        }
        catch (JsonException)
        {
            return null;
        }
    }
}
