using EdgeUpdater.Protocol;
using Xunit;

namespace EdgeUpdater.Protocol.Tests;

public sealed class MqttTopicsTests
{
    [Fact]
    public void Topics_follow_the_design_tree()
    {
        var topics = new MqttTopics();
        Assert.Equal("edgeupdater/v1/devices/dev-1/notice", topics.DeviceNotice("dev-1"));
        Assert.Equal("edgeupdater/v1/groups/lab/notice", topics.GroupNotice("lab"));
        Assert.Equal("edgeupdater/v1/devices/dev-1/command", topics.DeviceCommand("dev-1"));
        Assert.Equal("edgeupdater/v1/devices/dev-1/status", topics.DeviceStatus("dev-1"));
        Assert.Equal("edgeupdater/v1/devices/+/status", topics.AllDeviceStatus);
    }

    [Theory]
    [InlineData("a/b")]
    [InlineData("+")]
    [InlineData("#")]
    [InlineData("")]
    [InlineData("..")]
    [InlineData("dev 1")]
    public void Ids_that_would_inject_topic_levels_are_refused(string id)
    {
        var topics = new MqttTopics();
        Assert.Throws<ArgumentException>(() => topics.DeviceStatus(id));
    }

    [Fact]
    public void Status_topic_round_trips_to_the_device_id()
    {
        var topics = new MqttTopics("fleet/x");
        Assert.Equal("dev-9", topics.TryParseStatusDeviceId(topics.DeviceStatus("dev-9")));
        Assert.Null(topics.TryParseStatusDeviceId("fleet/x/devices/a/b/status"));
        Assert.Null(topics.TryParseStatusDeviceId("other/devices/dev-9/status"));
    }
}
