using System.Net;
using System.Net.Http.Json;
using System.Net.Sockets;
using System.Text;
using EdgeUpdater.Protocol;
using EdgeUpdater.Server.Tests.Support;
using EdgeUpdater.Testing;
using Xunit;

namespace EdgeUpdater.Server.Tests.Releases;

/// <summary>Publishing over real HTTP: what is accepted, what is refused, and that a refusal stores nothing.</summary>
public sealed class PublishTests : IAsyncLifetime
{
    private readonly TempDirectory _work = new("publish");
    private TestServer _server = null!;

    public async ValueTask InitializeAsync() => _server = await TestServer.StartAsync();

    public async ValueTask DisposeAsync()
    {
        await _server.DisposeAsync();
        _work.Dispose();
    }

    [Fact]
    public async Task A_signed_image_is_published_and_served_by_hash()
    {
        var image = await TestImages.BuildAsync(_work, "demo", "1.0.0");
        var release = await _server.PublishAsync(image);

        Assert.Equal(image.Sha256, release.ImageSha256);
        Assert.Equal(image.Size, release.ImageSize);
        Assert.Equal("1.0.0", release.Version);
        Assert.Equal(await File.ReadAllBytesAsync(image.Path), await _server.Anonymous.GetByteArrayAsync(HttpRoutes.Image(image.Sha256)));
        Assert.Equal(_server.Trust.Sign(image), await _server.Anonymous.GetByteArrayAsync(HttpRoutes.Manifest(release.ManifestSha256)));
        var listed = await _server.Http.GetFromJsonAsync(OperatorRoutes.Releases, OperatorJsonContext.Default.IReadOnlyListReleaseInfo);
        Assert.Equal(release.ManifestSha256, Assert.Single(listed!).ManifestSha256);
    }

    [Fact]
    public async Task Publishing_the_same_release_again_is_idempotent()
    {
        var image = await TestImages.BuildAsync(_work, "demo", "1.0.0");
        await _server.PublishAsync(image);
        using var content = TestServer.Multipart(_server.Trust.Sign(image), image.Path);
        using var again = await _server.Http.PostAsync(OperatorRoutes.Releases, content);
        Assert.Equal(HttpStatusCode.OK, again.StatusCode);
        Assert.Single((await _server.Http.GetFromJsonAsync(OperatorRoutes.Releases, OperatorJsonContext.Default.IReadOnlyListReleaseInfo))!);
    }

    [Fact]
    public async Task A_new_release_prepares_its_image_as_a_delta_target_once()
    {
        var image = await TestImages.BuildAsync(_work, "demo", "1.0.0");
        await _server.PublishAsync(image);
        await Eventually.TrueAsync(() => _server.Deltas.PreparedTargets.Contains(image.Sha256), "the published image is prepared");

        // Published again (200, nothing new): not prepared a second time.
        using var content = TestServer.Multipart(_server.Trust.Sign(image), image.Path);
        using var again = await _server.Http.PostAsync(OperatorRoutes.Releases, content);
        Assert.Equal(HttpStatusCode.OK, again.StatusCode);
        await Task.Delay(200);
        Assert.Single(_server.Deltas.PreparedTargets);
    }

    [Fact]
    public async Task Without_ProveOnPublish_a_release_is_not_prepared()
    {
        await using var server = await TestServer.StartAsync(o => o.Deltas.ProveOnPublish = false);
        var image = await TestImages.BuildAsync(_work, "demo", "1.0.0");
        await server.PublishAsync(image);
        await Task.Delay(200);
        Assert.Empty(server.Deltas.PreparedTargets);
    }

    [Fact]
    public async Task An_unsigned_manifest_is_refused_and_nothing_is_stored()
    {
        var image = await TestImages.BuildAsync(_work, "demo", "1.0.0");
        await AssertRefusedAsync(_server.Trust.Sign(image, signed: false), image.Path, HttpStatusCode.UnprocessableEntity, "missing-signature");
    }

    [Fact]
    public async Task A_manifest_signed_by_a_key_outside_the_key_set_is_refused()
    {
        var image = await TestImages.BuildAsync(_work, "demo", "1.0.0");
        using var stranger = EdgeUpdater.Trust.Keys.SigningKey.Generate();
        await AssertRefusedAsync(_server.Trust.Sign(image, signer: stranger), image.Path, HttpStatusCode.UnprocessableEntity, "unknown-key");
    }

    [Fact]
    public async Task A_manifest_whose_name_differs_from_the_image_config_is_refused()
    {
        var image = await TestImages.BuildAsync(_work, "demo", "1.0.0");
        await AssertRefusedAsync(_server.Trust.Sign(image with { Version = "1.0.1" }), image.Path, HttpStatusCode.UnprocessableEntity, "manifest-image-mismatch");
    }

    [Fact]
    public async Task An_image_whose_hash_differs_from_the_manifest_is_refused_and_nothing_is_stored()
    {
        var image = await TestImages.BuildAsync(_work, "demo", "1.0.0");
        var other = await TestImages.BuildAsync(_work, "demo", "1.0.0", seed: 2);
        await AssertRefusedAsync(_server.Trust.Sign(image, imageSize: other.Size), other.Path, HttpStatusCode.UnprocessableEntity, "hash-mismatch");
    }

    [Fact]
    public async Task An_image_longer_than_the_manifest_says_is_refused_while_streaming()
    {
        var image = await TestImages.BuildAsync(_work, "demo", "1.0.0");
        await AssertRefusedAsync(_server.Trust.Sign(image, imageSize: 4096), image.Path, HttpStatusCode.UnprocessableEntity, "size-mismatch");
    }

    [Fact]
    public async Task A_file_that_is_not_squashfs_is_refused_and_nothing_is_stored()
    {
        var path = _work.Combine("not-an-image.bin");
        await File.WriteAllBytesAsync(path, Encoding.UTF8.GetBytes(new string('x', 10_000)));
        var notImage = await TestImages.DescribeAsync(path, "demo", "1.0.0");
        await AssertRefusedAsync(_server.Trust.Sign(notImage), path, HttpStatusCode.UnprocessableEntity, "not-an-image");
    }

    [Fact]
    public async Task Parts_in_the_wrong_order_are_refused()
    {
        var image = await TestImages.BuildAsync(_work, "demo", "1.0.0");
        using var content = new MultipartFormDataContent
        {
            { new StreamContent(File.OpenRead(image.Path)), "image", "image.sqfs" },
            { new ByteArrayContent(_server.Trust.Sign(image)), "manifest", "manifest" },
        };
        using var response = await _server.Http.PostAsync(OperatorRoutes.Releases, content);
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        AssertNothingStored();
    }

    [Fact]
    public async Task Publishing_needs_the_operator_token()
    {
        var image = await TestImages.BuildAsync(_work, "demo", "1.0.0");
        using var content = TestServer.Multipart(_server.Trust.Sign(image), image.Path);
        using var response = await _server.Anonymous.PostAsync(OperatorRoutes.Releases, content);
        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        AssertNothingStored();
    }

    [Fact]
    public async Task An_upload_cut_off_midway_leaves_nothing_behind()
    {
        var image = await TestImages.BuildAsync(_work, "demo", "1.0.0", randomBytes: 2 * 1024 * 1024);
        var bytes = await File.ReadAllBytesAsync(image.Path);
        const string boundary = "edgeupdater-test-boundary";
        var head = Encoding.ASCII.GetBytes(
            $"--{boundary}\r\nContent-Disposition: form-data; name=\"manifest\"\r\n\r\n"
            + Encoding.UTF8.GetString(_server.Trust.Sign(image))
            + $"\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"image\"\r\nContent-Type: application/octet-stream\r\n\r\n");
        var tail = Encoding.ASCII.GetBytes($"\r\n--{boundary}--\r\n");
        var length = head.Length + bytes.Length + tail.Length;

        using (var socket = new TcpClient())
        {
            await socket.ConnectAsync(_server.Host.HttpUrl.Host, _server.Host.HttpUrl.Port);
            var stream = socket.GetStream();
            var request = Encoding.ASCII.GetBytes(
                $"POST {OperatorRoutes.Releases} HTTP/1.1\r\nHost: {_server.Host.HttpUrl.Authority}\r\nAuthorization: Bearer {TestServer.Token}\r\n"
                + $"Content-Type: multipart/form-data; boundary={boundary}\r\nContent-Length: {length}\r\n\r\n");
            await stream.WriteAsync(request);
            await stream.WriteAsync(head);
            await stream.WriteAsync(bytes.AsMemory(0, bytes.Length / 2));
            await stream.FlushAsync();

            // Wait until the server is writing the upload to its temp file, then drop the connection.
            await Eventually.TrueAsync(() => Directory.EnumerateFiles(_server.Data.Combine("tmp")).Any(), "the upload reaches a temp file");
            socket.Client.LingerState = new LingerOption(true, 0);
        }

        await Eventually.TrueAsync(() => !Directory.EnumerateFiles(_server.Data.Combine("tmp")).Any(), "the temp file of the aborted upload is deleted");
        AssertNothingStored();
        Assert.Empty((await _server.Http.GetFromJsonAsync(OperatorRoutes.Releases, OperatorJsonContext.Default.IReadOnlyListReleaseInfo))!);
    }

    private async Task AssertRefusedAsync(byte[] manifest, string imagePath, HttpStatusCode status, string reason)
    {
        using var content = TestServer.Multipart(manifest, imagePath);
        using var response = await _server.Http.PostAsync(OperatorRoutes.Releases, content);
        var body = await response.Content.ReadAsStringAsync();
        Assert.Equal(status, response.StatusCode);
        var error = System.Text.Json.JsonSerializer.Deserialize(body, OperatorJsonContext.Default.ApiError)!;
        Assert.Equal(reason, error.Reason);
        Assert.False(string.IsNullOrWhiteSpace(error.Message));
        AssertNothingStored();
        Assert.Empty((await _server.Http.GetFromJsonAsync(OperatorRoutes.Releases, OperatorJsonContext.Default.IReadOnlyListReleaseInfo))!);
    }

    private void AssertNothingStored()
    {
        Assert.Empty(Directory.EnumerateFiles(_server.Data.Combine("content"), "*", SearchOption.AllDirectories));
        Assert.Empty(Directory.EnumerateFiles(_server.Data.Combine("tmp")));
    }
}
