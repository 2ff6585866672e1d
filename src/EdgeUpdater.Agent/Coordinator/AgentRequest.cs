using EdgeUpdater.Protocol;

namespace EdgeUpdater.Agent.Coordinator;

/// <summary>Work for the coordinator's single loop.</summary>
internal abstract record AgentRequest;

/// <summary>An update notice from MQTT.</summary>
internal sealed record NoticeRequest(UpdateNotice Notice) : AgentRequest;

/// <summary>Resume the pending update of a target (after a backoff, check-now or start-up).</summary>
internal sealed record ResumeRequest(string Target) : AgentRequest;

/// <summary>Install from local files (control socket).</summary>
internal sealed record LocalInstallRequest(string? Target, string PayloadPath, string ManifestPath, TaskCompletionSource<string?> Accepted) : AgentRequest;

/// <summary>Return to the other slot (MQTT command, control socket, service button).</summary>
internal sealed record RollbackRequest(string? Target, string Origin, string? CommandId, TaskCompletionSource<string?>? Done) : AgentRequest;
