using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using EdgeUpdater.Protocol;

namespace EdgeUpdater.Cli.Commands;

/// <summary>The agent said no; the message is the agent's.</summary>
internal sealed class DeviceRefusedException(string message) : Exception(message);

/// <summary>One request, one response line over the agent's control socket (docs/agent.md).</summary>
internal static class DeviceClient
{
    /// <summary>How long one request may take; install and rollback answer once accepted.</summary>
    private static readonly TimeSpan RequestTimeout = TimeSpan.FromMinutes(11);

    public static async Task<ControlResponse> SendAsync(string socketPath, ControlRequest request, CancellationToken cancellationToken)
    {
        using var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            await socket.ConnectAsync(new UnixDomainSocketEndPoint(socketPath), cancellationToken).ConfigureAwait(false);
        }
        catch (SocketException e)
        {
            throw new IOException($"cannot reach the agent at {socketPath}: {e.Message} (is edgeupdater-agent running, and are you root?)", e);
        }

        var stream = new NetworkStream(socket, ownsSocket: false);
        await using (stream.ConfigureAwait(false))
        {
            var line = JsonSerializer.SerializeToUtf8Bytes(request, ControlJsonContext.Default.ControlRequest);
            await stream.WriteAsync(line, cancellationToken).ConfigureAwait(false);
            await stream.WriteAsync("\n"u8.ToArray(), cancellationToken).ConfigureAwait(false);
            using var reader = new StreamReader(stream, Encoding.UTF8, false, 4096, leaveOpen: true);
            using var limit = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            limit.CancelAfter(RequestTimeout);
            var answer = await reader.ReadLineAsync(limit.Token).ConfigureAwait(false)
                ?? throw new IOException($"the agent at {socketPath} closed the connection without answering");
            var response = JsonSerializer.Deserialize(answer, ControlJsonContext.Default.ControlResponse)
                ?? throw new IOException("the agent answered null");
            return response.Ok ? response : throw new DeviceRefusedException(response.Error ?? "refused without a reason");
        }
    }
}
