using Microsoft.AspNetCore.Builder;

namespace ConnMgr.Http;

/// <summary>
/// Adds routes (and the middleware they need) to the HTTP listener on
/// <c>Edge:HttpPort</c>. Register implementations in the daemon's container with
/// <c>services.AddSingleton&lt;IHttpEndpointContributor, MyEndpoints&gt;()</c>;
/// they are resolved there, so their constructors take the daemon's services.
/// </summary>
internal interface IHttpEndpointContributor
{
    /// <summary>
    /// Called once, before the listener starts, in registration order. Map
    /// routes with <c>app.MapGet</c>/<c>app.Map</c>; add middleware such as
    /// <c>app.UseWebSockets(...)</c> here too. The web application has its own
    /// small container (routing, Kestrel, the daemon's logger factory): take
    /// daemon services from the contributor's constructor, not from
    /// <c>app.Services</c>.
    /// </summary>
    void Configure(WebApplication app);
}
