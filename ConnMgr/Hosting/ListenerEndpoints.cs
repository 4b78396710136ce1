using System.Collections.Concurrent;
using System.Net;
using ConnMgr.Options;
using Microsoft.Extensions.Options;

namespace ConnMgr.Hosting;

/// <summary>
/// Where each listener is bound, by the key that configures its port
/// (<c>Edge:ClientPort</c>, <c>Edge:HttpPort</c>, <c>Core:Port</c>). Every listener
/// takes its bind address from <see cref="BindEndPoint"/> and records the address
/// it actually got with <see cref="Record"/>; with <c>Testing:EphemeralPorts</c>
/// that is the only way to learn the port.
/// </summary>
internal sealed class ListenerEndpoints(IOptions<TestingOptions> testing)
{
    private readonly ConcurrentDictionary<string, IPEndPoint> _bound = new(StringComparer.OrdinalIgnoreCase);

    /// <summary>The endpoint to bind for a configured address and port (port 0 when ports are ephemeral).</summary>
    public IPEndPoint BindEndPoint(string address, int configuredPort) =>
        new(IPAddress.Parse(address), testing.Value.EphemeralPorts ? 0 : configuredPort);

    public void Record(string key, IPEndPoint bound) => _bound[key] = bound;

    public bool TryGet(string key, out IPEndPoint endPoint) => _bound.TryGetValue(key, out endPoint!);

    public IPEndPoint Get(string key) =>
        _bound.TryGetValue(key, out IPEndPoint? endPoint)
            ? endPoint
            : throw new InvalidOperationException($"no listener is bound for {key} (off, or not started yet)");

    /// <summary>Every bound listener, ordered by key, for logs and status lines.</summary>
    public IReadOnlyList<KeyValuePair<string, IPEndPoint>> All =>
        _bound.OrderBy(pair => pair.Key, StringComparer.OrdinalIgnoreCase).ToArray();
}
