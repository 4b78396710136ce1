using System.Net;
using ConnMgr.Hosting;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace ConnMgr.Tests.Hosting;

/// <summary>
/// The real daemon host, in-process, on loopback and ports the system picks,
/// with a private data directory. Dispose stops it and deletes the directory.
/// </summary>
internal sealed class TestDaemon : IAsyncDisposable
{
    private readonly TempDirectory _data;

    private TestDaemon(IHost host, TempDirectory data)
    {
        Host = host;
        _data = data;
    }

    public IHost Host { get; }

    public string DataDirectory => _data.Path;

    public T Get<T>() where T : notnull => Host.Services.GetRequiredService<T>();

    public IPEndPoint Endpoint(string key) => Get<ListenerEndpoints>().Get(key);

    /// <summary>Builds without starting; <paramref name="args"/> come after the test defaults, so they win.</summary>
    public static TestDaemon Build(string[]? args = null, Action<IServiceCollection, IConfiguration>? extra = null)
    {
        var data = new TempDirectory();
        string[] defaults =
        [
            "--Testing:EphemeralPorts=true",
            "--Edge:ListenAddress=127.0.0.1",
            "--DataDirectory=" + data.Path,
            "--Logging:Level=Warning",
        ];
        return new TestDaemon(DaemonHost.Build([.. defaults, .. args ?? []], extra), data);
    }

    public static async Task<TestDaemon> StartAsync(string[]? args = null, Action<IServiceCollection, IConfiguration>? extra = null)
    {
        TestDaemon daemon = Build(args, extra);
        try
        {
            await daemon.Host.StartAsync();
        }
        catch
        {
            await daemon.DisposeAsync();
            throw;
        }
        return daemon;
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            await Host.StopAsync();
        }
        finally
        {
            Host.Dispose();
            _data.Dispose();
        }
    }
}

/// <summary>A fresh directory under the system temp directory, deleted on dispose.</summary>
internal sealed class TempDirectory : IDisposable
{
    public TempDirectory()
    {
        Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "connmgr-test-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(Path);
    }

    public string Path { get; }

    public string File(string name) => System.IO.Path.Combine(Path, name);

    public void Dispose() => Directory.Delete(Path, recursive: true);
}
