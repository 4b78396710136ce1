using System.Collections.Concurrent;
using Microsoft.Data.Sqlite;

namespace ConnMgr.Core.Storage;

/// <summary>
/// A fixed set of read-only connections. WAL lets them read while the writer commits, each
/// seeing the last committed state. A query runs on the thread pool (SQLite calls block), so a
/// network loop awaiting it never does file I/O itself; at most one query runs per connection,
/// and further callers wait asynchronously for a free one.
/// </summary>
internal sealed class ReadPool : IAsyncDisposable
{
    private readonly SqliteConnection[] _connections;
    private readonly ConcurrentStack<SqliteConnection> _idle;
    private readonly SemaphoreSlim _free;
    private volatile bool _disposed;

    public ReadPool(string path, XmppStoreOptions options)
    {
        _connections = new SqliteConnection[options.ReadConnections];
        try
        {
            for (var i = 0; i < _connections.Length; i++)
            {
                _connections[i] = StoreDatabase.OpenReadOnly(path, options);
            }
        }
        catch
        {
            foreach (var connection in _connections)
            {
                connection?.Dispose();
            }
            throw;
        }
        _idle = new ConcurrentStack<SqliteConnection>(_connections);
        _free = new SemaphoreSlim(_connections.Length, _connections.Length);
    }

    public async Task<T> RunAsync<T>(Func<SqliteConnection, T> query, CancellationToken cancellationToken)
    {
        await _free.WaitAsync(cancellationToken);
        try
        {
            ObjectDisposedException.ThrowIf(_disposed, typeof(XmppStore));
            _idle.TryPop(out var connection);
            try
            {
                return await Task.Run(() => query(connection!), cancellationToken);
            }
            finally
            {
                _idle.Push(connection!);
            }
        }
        finally
        {
            _free.Release();
        }
    }

    /// <summary>Waits for running queries, closes the connections, and fails later callers.</summary>
    public async ValueTask DisposeAsync()
    {
        _disposed = true;
        for (var i = 0; i < _connections.Length; i++)
        {
            await _free.WaitAsync();
        }
        foreach (var connection in _connections)
        {
            connection.Dispose();
        }
        // Let anyone already waiting in RunAsync through, to find _disposed and throw.
        _free.Release(_connections.Length);
    }
}
