using System.Text.Json;
using EdgeUpdater.Protocol;
using Xunit;

namespace EdgeUpdater.Protocol.Tests;

public sealed class MessagesTests
{
    [Fact]
    public void Status_serializes_states_in_kebab_case_and_round_trips()
    {
        var status = new DeviceStatus
        {
            DeviceId = "dev-1",
            State = UpdateState.RolledBack,
            Targets = [new TargetStatus { Name = "app", Kind = "app", State = UpdateState.RolledBack, ActiveSlot = "a" }],
            LastError = "health check failed",
            Timestamp = new DateTimeOffset(2026, 1, 2, 3, 4, 5, TimeSpan.Zero),
        };

        var json = JsonSerializer.Serialize(status, ProtocolJsonContext.Default.DeviceStatus);
        Assert.Contains("\"state\":\"rolled-back\"", json, StringComparison.Ordinal);
        Assert.Contains("\"schema\":1", json, StringComparison.Ordinal);
        var back = JsonSerializer.Deserialize(json, ProtocolJsonContext.Default.DeviceStatus)!;
        Assert.Equal(status.DeviceId, back.DeviceId);
        Assert.Equal(UpdateState.RolledBack, back.Targets[0].State);
    }

    [Fact]
    public void Command_kind_reads_from_kebab_case()
    {
        var command = JsonSerializer.Deserialize("""{"schema":1,"id":"c1","kind":"check-now"}""", ProtocolJsonContext.Default.DeviceCommand)!;
        Assert.Equal(DeviceCommandKind.CheckNow, command.Kind);
    }

    [Fact]
    public void Unknown_schema_is_refused_by_name()
    {
        var error = Assert.Throws<ProtocolException>(() => ProtocolVersion.Check(2, "update notice"));
        Assert.Contains("schema version 2", error.Message, StringComparison.Ordinal);
    }
}
