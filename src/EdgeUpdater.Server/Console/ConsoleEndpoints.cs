using System.Reflection;

namespace EdgeUpdater.Server.Console;

/// <summary>
/// The fleet web console: three static files embedded in the server, served at <c>/console/</c>. The
/// page calls the operator API with the token the operator types in (kept in the browser's
/// sessionStorage), so it needs no server-side session.
/// </summary>
internal static class ConsoleEndpoints
{
    private static readonly (string Route, string Resource, string ContentType)[] Files =
    [
        ("/console/", "index.html", "text/html; charset=utf-8"),
        ("/console/console.js", "console.js", "text/javascript; charset=utf-8"),
        ("/console/console.css", "console.css", "text/css; charset=utf-8"),
    ];

    public static void Map(IEndpointRouteBuilder app)
    {
        app.MapGet("/", () => Results.Redirect("/console/"));
        foreach (var (route, resource, contentType) in Files)
        {
            var bytes = Load(resource);
            app.MapGet(route, (HttpContext context) =>
            {
                context.Response.Headers.CacheControl = "no-cache";
                context.Response.Headers["Content-Security-Policy"] = "default-src 'self'; style-src 'self'; script-src 'self'";
                return Results.Bytes(bytes, contentType);
            });
        }
    }

    private static byte[] Load(string name)
    {
        var assembly = Assembly.GetExecutingAssembly();
        using var stream = assembly.GetManifestResourceStream($"EdgeUpdater.Server.Console.{name}")
            ?? throw new InvalidOperationException($"console resource '{name}' is missing from the server assembly");
        using var copy = new MemoryStream();
        stream.CopyTo(copy);
        return copy.ToArray();
    }
}
