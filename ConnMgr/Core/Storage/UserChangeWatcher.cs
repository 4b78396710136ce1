using System.Globalization;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Logging;

namespace ConnMgr.Core.Storage;

/// <summary>
/// Tells the running core about users removed or given a new password by anyone: the CLI in
/// another process, this process, or an operator in the sqlite3 shell. Triggers on the users
/// table append to <c>user_changes</c>; once per <see cref="XmppStoreOptions.ChangePollInterval"/>
/// this class asks <c>PRAGMA data_version</c> (which changes when another connection has
/// committed, and costs no I/O) and only then reads the new rows. Credentials themselves are never
/// cached: every login reads them, so a new password applies to the next login at once; the
/// events exist so the core can end sessions of a removed user.
/// The events are raised on a thread-pool thread, in commit order; handlers must not block.
/// </summary>
internal sealed class UserChangeWatcher : IAsyncDisposable
{
    // Its own connection: data_version is only meaningful between calls on one connection.
    private readonly SqliteConnection _connection;
    private readonly PeriodicTimer _timer;
    private readonly ILogger _logger;
    private readonly Task _loop;
    private long _dataVersion;
    private long _lastSeq;

    public UserChangeWatcher(string path, XmppStoreOptions options, ILogger logger)
    {
        _logger = logger;
        _connection = StoreDatabase.OpenReadOnly(path, options);
        try
        {
            _dataVersion = DataVersion();
            using var last = _connection.Command("SELECT coalesce(max(seq), 0) FROM user_changes");
            _lastSeq = Convert.ToInt64(last.ExecuteScalar(), CultureInfo.InvariantCulture);
        }
        catch
        {
            _connection.Dispose();
            throw;
        }
        _timer = new PeriodicTimer(options.ChangePollInterval);
        _loop = PollAsync();
    }

    public event Action<string>? UserRemoved;

    public event Action<string>? PasswordChanged;

    private async Task PollAsync()
    {
        while (await _timer.WaitForNextTickAsync())
        {
            try
            {
                Poll();
            }
            catch (Exception e)
            {
                StoreLog.ChangePollFailed(_logger, e);
            }
        }
    }

    private void Poll()
    {
        var version = DataVersion();
        if (version == _dataVersion)
        {
            return;
        }

        var changes = new List<(string Name, string Kind)>();
        var lastSeq = _lastSeq;
        using (var command = _connection.Command("SELECT seq, name, kind FROM user_changes WHERE seq > $last ORDER BY seq"))
        {
            command.Parameters.AddWithValue("$last", _lastSeq);
            using var reader = command.ExecuteReader();
            while (reader.Read())
            {
                lastSeq = reader.GetInt64(0);
                changes.Add((reader.GetString(1), reader.GetString(2)));
            }
        }
        // Only now: if the query failed, the next tick reads the same rows again.
        _dataVersion = version;
        _lastSeq = lastSeq;

        foreach (var (name, kind) in changes)
        {
            var removed = kind == "removed";
            if (removed)
            {
                StoreLog.UserRemoved(_logger, name);
            }
            else
            {
                StoreLog.PasswordChanged(_logger, name);
            }
            var handlers = removed ? UserRemoved : PasswordChanged;
            if (handlers is null)
            {
                continue;
            }
            // One by one, so a handler that throws cannot keep the others from hearing of it.
            foreach (var handler in handlers.GetInvocationList())
            {
                try
                {
                    ((Action<string>)handler)(name);
                }
                catch (Exception e)
                {
                    StoreLog.ChangeHandlerFailed(_logger, name, e);
                }
            }
        }
    }

    private long DataVersion()
    {
        using var command = _connection.Command("PRAGMA data_version");
        return Convert.ToInt64(command.ExecuteScalar(), CultureInfo.InvariantCulture);
    }

    public async ValueTask DisposeAsync()
    {
        // A disposed PeriodicTimer ends the loop after the current poll.
        _timer.Dispose();
        await _loop;
        _connection.Dispose();
    }
}
