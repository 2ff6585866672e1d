// Fleet benchmark for edgeupdater-server (docs/benchmarks.md, "Server and fleet").
// Starts the server as its own process (embedded broker, SQLite), simulates N MQTT devices in this
// process, rolls a release out to all of them and has each download a cached delta over HTTP.
// Measures: notices per second, deltas served per second, p99 time to first byte, server RSS.
// usage: ServerBench SERVER_DLL WORKDIR [DEVICES] [DELTA_BYTES]
using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text.Json;
using EdgeUpdater.Protocol;
using EdgeUpdater.Trust.Envelopes;
using EdgeUpdater.Trust.Keys;
using EdgeUpdater.Trust.KeySets;
using EdgeUpdater.Trust.Manifests;
using EdgeUpdater.Trust.Versioning;
using MQTTnet;
using MQTTnet.Protocol;

var serverDll = args[0];
var work = Path.GetFullPath(args[1]);
var deviceCount = args.Length > 2 ? int.Parse(args[2]) : 10_000;
var deltaBytes = args.Length > 3 ? int.Parse(args[3]) : 256 * 1024;
const string Token = "bench-operator-token-0123456789";
var topics = new MqttTopics();

// --- Trust, two images, and a cached delta between them (the delta library is not wired yet, so the
// cache is seeded the way a shared cache directory would be: the server serves what is cached).
Directory.CreateDirectory(work);
var data = Path.Combine(work, "data");
using var root = SigningKey.Generate();
using var release = SigningKey.Generate();
await PublicKeyFile.WriteAsync(Path.Combine(work, "root.pub"), root.PublicKey);
var keySet = new KeySet
{
    Version = 1, Created = DateTimeOffset.UtcNow.AddDays(-1), Expires = DateTimeOffset.UtcNow.AddDays(30), RootThreshold = 1, ReleaseThreshold = 1,
    Keys = [KeySetEntry.For(root.PublicKey, KeyRole.Root), KeySetEntry.For(release.PublicKey, KeyRole.Release, DateTimeOffset.UtcNow.AddDays(30), false)],
};
var keySetEnvelope = SignedEnvelope.Create(PayloadTypes.KeySet, keySet.ToPayloadBytes(), [root]).ToJsonBytes();
var v1 = await BuildImageAsync("1.0.0", 1);
var v2 = await BuildImageAsync("2.0.0", 2);
var delta = new byte[deltaBytes];
new Random(3).NextBytes(delta);
var deltaSha = Convert.ToHexStringLower(SHA256.HashData(delta));
Directory.CreateDirectory(Path.Combine(data, "deltas", v1.Sha));
await File.WriteAllBytesAsync(Path.Combine(data, "deltas", v1.Sha, $"{v2.Sha}.any.best.{deltaSha}.delta"), delta);

// --- Server process.
var httpPort = FreePort();
var mqttPort = FreePort();
var server = Process.Start(new ProcessStartInfo("dotnet")
{
    ArgumentList = { serverDll, "--data-dir", data, "--urls", $"http://127.0.0.1:{httpPort}", "--mqtt-bind", "127.0.0.1", "--mqtt-port", mqttPort.ToString(),
        "--device-auth", "open", "--operator-token", Token, "--trusted-root", Path.Combine(work, "root.pub"), "--LogLevel", "Warning",
        "--Rollouts:TickInterval", "00:00:00.500", "--Mqtt:ConnectionBacklog", "4096" },
    RedirectStandardOutput = false,
    RedirectStandardError = false,
})!;
try
{
    using var http = new HttpClient(new SocketsHttpHandler { MaxConnectionsPerServer = 64 }) { BaseAddress = new Uri($"http://127.0.0.1:{httpPort}"), Timeout = TimeSpan.FromMinutes(5) };
    http.DefaultRequestHeaders.Authorization = new("Bearer", Token);
    await WaitForAsync(async () => { try { return (await http.GetAsync(KeySetRoutes.Chain)).IsSuccessStatusCode; } catch (HttpRequestException) { return false; } }, TimeSpan.FromSeconds(60));
    (await http.PostAsync(KeySetRoutes.Chain, new ByteArrayContent(keySetEnvelope))).EnsureSuccessStatusCode();
    await PublishAsync(v1);
    var manifest2 = await PublishAsync(v2);
    var rssIdle = Rss(server.Id);

    // --- Devices connect and report idle on v1.
    var devices = new Device[deviceCount];
    var connectWatch = Stopwatch.StartNew();
    await Parallel.ForEachAsync(Enumerable.Range(0, deviceCount), new ParallelOptions { MaxDegreeOfParallelism = 64 }, async (i, ct) =>
    {
        devices[i] = await Device.ConnectAsync(mqttPort, topics, $"dev-{i:D5}", v1.Sha);
    });
    var connectSeconds = connectWatch.Elapsed.TotalSeconds;
    await WaitForAsync(async () => (await http.GetFromJsonAsync(OperatorRoutes.Devices, OperatorJsonContext.Default.IReadOnlyListDeviceInfo))!.Count == deviceCount, TimeSpan.FromMinutes(5));
    var registeredSeconds = connectWatch.Elapsed.TotalSeconds;
    var rssConnected = Rss(server.Id);

    // --- Rollout to all: every notice leads to a delta download, then a committed report.
    var downloads = new DownloadStats();
    foreach (var device in devices)
    {
        device.OnNotice = notice => downloads.RunAsync(http, device, notice, v1.Sha, deltaBytes);
    }

    var rolloutWatch = Stopwatch.StartNew();
    var rolloutStartedAt = Device.ClockStart.Elapsed;
    var start = await http.PostAsJsonAsync(OperatorRoutes.Rollouts, new RolloutRequest { ManifestSha256 = manifest2, Group = "bench", Phases = [100], SuccessThreshold = 1.0, FailureThreshold = 0.5 }, OperatorJsonContext.Default.RolloutRequest);
    start.EnsureSuccessStatusCode();
    var rollout = (await start.Content.ReadFromJsonAsync(OperatorJsonContext.Default.RolloutInfo))!;
    await WaitForAsync(() => Task.FromResult(Device.NoticesReceived >= deviceCount), TimeSpan.FromMinutes(5));
    var noticeSeconds = (Device.LastNoticeAt - rolloutStartedAt).TotalSeconds;
    await WaitForAsync(() => Task.FromResult(downloads.Completed + downloads.Failed >= deviceCount), TimeSpan.FromMinutes(10));
    var downloadSeconds = rolloutWatch.Elapsed.TotalSeconds;
    await WaitForAsync(async () => (await http.GetFromJsonAsync(OperatorRoutes.Rollout(rollout.Id), OperatorJsonContext.Default.RolloutInfo))!.State == RolloutState.Completed, TimeSpan.FromMinutes(5));
    var completeSeconds = rolloutWatch.Elapsed.TotalSeconds;
    var rssPeak = PeakRss(server.Id);

    var ttfb = downloads.TimesToFirstByte.OrderBy(t => t).ToArray();
    Console.WriteLine($"devices                     {deviceCount}");
    Console.WriteLine($"connect + status            {connectSeconds:F1} s ({deviceCount / connectSeconds:F0} devices/s), all registered after {registeredSeconds:F1} s");
    Console.WriteLine($"notices                     {deviceCount} in {noticeSeconds:F2} s = {deviceCount / noticeSeconds:F0} notices/s (rollout start to last notice received)");
    Console.WriteLine($"deltas served               {downloads.Completed} ok, {downloads.Failed} failed, {deltaBytes} bytes each, done {downloadSeconds:F1} s after rollout start = {downloads.Completed / downloadSeconds:F0} deltas/s ({downloads.Completed * (double)deltaBytes / downloadSeconds / 1e6:F0} MB/s)");
    Console.WriteLine($"time to first byte          p50 {Percentile(ttfb, 0.50):F1} ms, p99 {Percentile(ttfb, 0.99):F1} ms, max {ttfb[^1]:F1} ms (64 HTTP connections shared by the simulated fleet)");
    Console.WriteLine($"rollout completed           {completeSeconds:F1} s after start");
    Console.WriteLine($"server RSS                  idle {rssIdle / 1048576} MiB, {deviceCount} connected {rssConnected / 1048576} MiB, peak {rssPeak / 1048576} MiB");
}
finally
{
    server.Kill();
    await server.WaitForExitAsync();
}

return 0;

async Task<string> PublishAsync((string Path, string Sha, long Size, string Version) image)
{
    using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{httpPort}") };
    http.DefaultRequestHeaders.Authorization = new("Bearer", Token);
    var manifest = new ReleaseManifest
    {
        Name = "bench", Version = SemanticVersion.Parse(image.Version), TargetKind = TargetKind.App, Target = "app", ImageSha256 = image.Sha, ImageSize = image.Size,
        Hardware = ["sim"], Architectures = ["x64"], Created = DateTimeOffset.UtcNow.AddMinutes(-1), Expires = DateTimeOffset.UtcNow.AddDays(1), AllowDowngrade = false,
    };
    var envelope = SignedEnvelope.Create(PayloadTypes.ReleaseManifest, manifest.ToPayloadBytes(), [release]).ToJsonBytes();
    using var content = new MultipartFormDataContent { { new ByteArrayContent(envelope), "manifest", "m" }, { new StreamContent(File.OpenRead(image.Path)), "image", "i" } };
    var response = await http.PostAsync(OperatorRoutes.Releases, content);
    response.EnsureSuccessStatusCode();
    return (await response.Content.ReadFromJsonAsync(OperatorJsonContext.Default.ReleaseInfo))!.ManifestSha256;
}

async Task<(string Path, string Sha, long Size, string Version)> BuildImageAsync(string version, int seed)
{
    var tree = Path.Combine(work, "tree-" + version);
    Directory.CreateDirectory(Path.Combine(tree, "root"));
    await File.WriteAllTextAsync(Path.Combine(tree, "config.json"), $$"""{"name": "bench", "version": "{{version}}"}""");
    var bytes = new byte[4 << 20];
    new Random(seed).NextBytes(bytes);
    await File.WriteAllBytesAsync(Path.Combine(tree, "root", "data.bin"), bytes);
    var image = Path.Combine(work, $"bench-{version}.sqfs");
    using (var p = Process.Start("mksquashfs", [tree, image, "-noappend", "-all-root", "-quiet", "-no-progress"])) { await p.WaitForExitAsync(); }
    return (image, Convert.ToHexStringLower(SHA256.HashData(await File.ReadAllBytesAsync(image))), new FileInfo(image).Length, version);
}

static int FreePort()
{
    using var listener = new TcpListener(IPAddress.Loopback, 0);
    listener.Start();
    return ((IPEndPoint)listener.LocalEndpoint).Port;
}

static async Task WaitForAsync(Func<Task<bool>> condition, TimeSpan timeout)
{
    var deadline = DateTime.UtcNow + timeout;
    while (!await condition())
    {
        if (DateTime.UtcNow > deadline)
        {
            throw new TimeoutException("benchmark step did not finish in time");
        }

        await Task.Delay(100);
    }
}

static long Rss(int pid) => ReadStatus(pid, "VmRSS:");

static long PeakRss(int pid) => ReadStatus(pid, "VmHWM:");

static long ReadStatus(int pid, string key) =>
    long.Parse(File.ReadLines($"/proc/{pid}/status").First(l => l.StartsWith(key, StringComparison.Ordinal))[key.Length..].Trim().Split(' ')[0]) * 1024;

static double Percentile(double[] sorted, double p) => sorted.Length == 0 ? double.NaN : sorted[Math.Min(sorted.Length - 1, (int)Math.Ceiling(p * sorted.Length) - 1)];

/// <summary>One simulated device: an MQTT client with the agent's topics and status.</summary>
sealed class Device
{
    public static readonly Stopwatch ClockStart = Stopwatch.StartNew();
    private static long s_lastNoticeTicks;
    private static int s_notices;
    private readonly IMqttClient _client;
    private readonly MqttTopics _topics;

    private Device(IMqttClient client, MqttTopics topics, string id)
    {
        _client = client;
        _topics = topics;
        Id = id;
    }

    public static int NoticesReceived => Volatile.Read(ref s_notices);

    public static TimeSpan LastNoticeAt => TimeSpan.FromTicks(Interlocked.Read(ref s_lastNoticeTicks));

    public string Id { get; }

    public Func<UpdateNotice, Task>? OnNotice { get; set; }

    public static async Task<Device> ConnectAsync(int port, MqttTopics topics, string id, string imageSha)
    {
        var client = new MqttClientFactory().CreateMqttClient();
        var device = new Device(client, topics, id);
        client.ApplicationMessageReceivedAsync += e =>
        {
            var reader = new Utf8JsonReader(e.ApplicationMessage.Payload);
            var notice = JsonSerializer.Deserialize(ref reader, ProtocolJsonContext.Default.UpdateNotice)!;
            Interlocked.Increment(ref s_notices);
            var now = ClockStart.Elapsed.Ticks;
            long seen;
            while ((seen = Interlocked.Read(ref s_lastNoticeTicks)) < now && Interlocked.CompareExchange(ref s_lastNoticeTicks, now, seen) != seen)
            {
            }
            var handler = device.OnNotice;
            if (handler is not null)
            {
                _ = Task.Run(() => handler(notice));
            }

            return Task.CompletedTask;
        };
        await client.ConnectAsync(new MqttClientOptionsBuilder().WithTcpServer("127.0.0.1", port).WithClientId(id).WithProtocolVersion(MQTTnet.Formatter.MqttProtocolVersion.V500)
            .WithKeepAlivePeriod(TimeSpan.FromMinutes(5)).WithTimeout(TimeSpan.FromSeconds(60)).Build());
        await client.SubscribeAsync(new MqttClientSubscribeOptionsBuilder().WithTopicFilter(topics.DeviceNotice(id), MqttQualityOfServiceLevel.AtLeastOnce).Build());
        await device.ReportAsync(UpdateState.Idle, null, imageSha);
        return device;
    }

    public Task ReportAsync(UpdateState state, string? rolloutId, string imageSha) =>
        _client.PublishAsync(new MqttApplicationMessageBuilder().WithTopic(_topics.DeviceStatus(Id)).WithRetainFlag(true).WithQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce)
            .WithPayload(JsonSerializer.SerializeToUtf8Bytes(new DeviceStatus
            {
                DeviceId = Id, Group = "bench", Hardware = "sim", Architecture = "x64", State = state, RolloutId = rolloutId, Timestamp = DateTimeOffset.UtcNow,
                Targets = [new TargetStatus { Name = "app", Kind = "app", State = state, ActiveSlot = "a", ImageSha256 = imageSha }],
            }, ProtocolJsonContext.Default.DeviceStatus)).Build());
}

/// <summary>Delta downloads of the fleet: time to first byte per request.</summary>
sealed class DownloadStats
{
    private int _completed;
    private int _failed;

    public System.Collections.Concurrent.ConcurrentBag<double> TimesToFirstByte { get; } = [];

    public int Completed => Volatile.Read(ref _completed);

    public int Failed => Volatile.Read(ref _failed);

    public async Task RunAsync(HttpClient http, Device device, UpdateNotice notice, string fromSha, int expectedBytes)
    {
        try
        {
            var watch = Stopwatch.StartNew();
            using var response = await http.GetAsync(HttpRoutes.Delta(fromSha, notice.ImageSha256), HttpCompletionOption.ResponseHeadersRead);
            response.EnsureSuccessStatusCode();
            await using var body = await response.Content.ReadAsStreamAsync();
            var buffer = new byte[64 * 1024];
            var read = await body.ReadAsync(buffer);
            TimesToFirstByte.Add(watch.Elapsed.TotalMilliseconds);
            long total = read;
            while ((read = await body.ReadAsync(buffer)) > 0)
            {
                total += read;
            }

            if (total != expectedBytes)
            {
                throw new IOException($"got {total} bytes");
            }

            Interlocked.Increment(ref _completed);
            await device.ReportAsync(UpdateState.Committed, notice.RolloutId, notice.ImageSha256);
        }
        catch (Exception e)
        {
            Interlocked.Increment(ref _failed);
            Console.Error.WriteLine($"{device.Id}: {e.Message}");
        }
    }
}
