using BenchmarkDotNet.Attributes;
using ConnMgr.Protocol.Sasl;

namespace ConnMgr.Benchmarks.Sasl;

/// <summary>
/// One SCRAM login per operation with the credential already looked up (PBKDF2 happened when the
/// password was set, not here). <see cref="ServerExchange"/> is the core's share: parse client-first,
/// build server-first, verify client-final; the client messages are prepared once, so the server nonce
/// is fixed. <see cref="ServerAndClient"/> adds the load generator's side with its SaltedPassword cache
/// and random nonces on both sides.
/// </summary>
[MemoryDiagnoser]
public class ScramExchangeBenchmarks
{
    private const string ServerNonce = "3rfcNHYJY1ZVvWVs7jAAAAAA";

    private ScramCredential _credential = null!;
    private ScramSaltedPasswordCache _cache = null!;
    private byte[] _clientFirst = null!;
    private byte[] _clientFinal = null!;

    [Params(ScramHash.Sha1, ScramHash.Sha256)]
    public ScramHash Hash { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _credential = ScramCredential.Derive("pencil", Hash);
        _cache = new ScramSaltedPasswordCache();
        var client = new ScramClient(Hash, "user", "pencil", _cache);
        var server = new ScramServer(Hash, null, ServerNonce);
        _clientFirst = client.ClientFirst();
        server.ReceiveClientFirst(_clientFirst, out _);
        client.ReceiveServerFirst(server.CreateServerFirst(_credential), out var clientFinal);
        _clientFinal = clientFinal!;
        if (server.ReceiveClientFinal(_clientFinal, out _) != SaslResult.Success)
        {
            throw new InvalidOperationException("The prepared exchange does not verify.");
        }
    }

    [Benchmark(Baseline = true)]
    public byte[]? ServerExchange()
    {
        var server = new ScramServer(Hash, null, ServerNonce);
        server.ReceiveClientFirst(_clientFirst, out _);
        server.CreateServerFirst(_credential);
        server.ReceiveClientFinal(_clientFinal, out var serverFinal);
        return serverFinal;
    }

    [Benchmark]
    public bool ServerAndClient()
    {
        var server = new ScramServer(Hash);
        var client = new ScramClient(Hash, "user", "pencil", _cache);
        server.ReceiveClientFirst(client.ClientFirst(), out _);
        client.ReceiveServerFirst(server.CreateServerFirst(_credential), out var clientFinal);
        server.ReceiveClientFinal(clientFinal!, out var serverFinal);
        return client.VerifyServerFinal(serverFinal!);
    }
}
