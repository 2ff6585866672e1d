using EdgeUpdater.Protocol;

namespace EdgeUpdater.Server.Hosting;

/// <summary>The error body every endpoint uses: <c>{"reason": ..., "message": ...}</c>.</summary>
internal static class ApiResults
{
    public static IResult Error(int statusCode, string reason, string? message = null) =>
        Results.Json(new ApiError { Reason = reason, Message = message }, OperatorJsonContext.Default.ApiError, statusCode: statusCode);
}
