using System.Text.Json;
using System.Text.Json.Serialization;
using ConnMgr.Protocol.Sasl;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace ConnMgr.Core.Storage;

/// <summary>
/// The embedded core's persistent state: users (SCRAM credentials only, never a password),
/// rosters and offline messages, in one SQLite file, <c>&lt;DataDirectory&gt;/connmgr.db</c>.
/// <para>
/// Every method is safe to call from a network loop: writes go through
/// <see cref="StoreWriter"/> (one thread, bounded queue, group commit) and complete after their
/// transaction commits; reads run on the thread pool through <see cref="ReadPool"/>. The daemon
/// and the <c>connmgr user</c> CLI open the same file at once: WAL and a busy timeout let them
/// share it, and <see cref="UserRemoved"/> reports what the other side removed.
/// </para>
/// <para>
/// User names are normalised here with <see cref="UserNames.TryNormalize"/>; a name that is
/// not valid is treated as an unknown user, except by <see cref="AddUserAsync"/>, which
/// throws <see cref="ArgumentException"/> saying why.
/// </para>
/// </summary>
internal sealed class XmppStore : IAsyncDisposable
{
    public const string DatabaseFileName = "connmgr.db";

    private readonly XmppStoreOptions _options;
    private readonly StoreWriter _writer;
    private readonly ReadPool _readers;
    private readonly UserChangeWatcher _watcher;
    private int _disposed;

    private XmppStore(string path, XmppStoreOptions options, StoreWriter writer, ReadPool readers, UserChangeWatcher watcher)
    {
        DatabasePath = path;
        _options = options;
        _writer = writer;
        _readers = readers;
        _watcher = watcher;
    }

    public string DatabasePath { get; }

    /// <summary>
    /// A user was removed, by this process or another (the CLI). Raised within about
    /// <see cref="XmppStoreOptions.ChangePollInterval"/>, on a thread-pool thread, with the
    /// normalised name; the core ends that user's sessions.
    /// </summary>
    public event Action<string>? UserRemoved
    {
        add => _watcher.UserRemoved += value;
        remove => _watcher.UserRemoved -= value;
    }

    /// <summary>A user's password was changed, by this process or another; raised like <see cref="UserRemoved"/>.</summary>
    public event Action<string>? PasswordChanged
    {
        add => _watcher.PasswordChanged += value;
        remove => _watcher.PasswordChanged -= value;
    }

    internal int QueuedWrites => _writer.QueuedWrites;

    /// <summary>
    /// Opens (creating the directory and the file if needed) and migrates the store. Blocks while
    /// it opens the file and migrates; call it at start-up, not from a network loop.
    /// </summary>
    public static XmppStore Open(string dataDirectory, ILogger<XmppStore>? logger = null, XmppStoreOptions? options = null)
    {
        options ??= new XmppStoreOptions();
        options.Validate();
        ILogger log = logger ?? NullLogger<XmppStore>.Instance;

        Directory.CreateDirectory(dataDirectory);
        var path = Path.GetFullPath(Path.Combine(dataDirectory, DatabaseFileName));
        CreateOwnerOnlyFile(path);

        var connection = StoreDatabase.OpenReadWrite(path, options, log);
        ReadPool? readers = null;
        UserChangeWatcher watcher;
        try
        {
            readers = new ReadPool(path, options);
            watcher = new UserChangeWatcher(path, options, log);
        }
        catch
        {
            connection.Dispose();
            // Nothing is running on a pool that was just built, so this completes at once.
            readers?.DisposeAsync().AsTask().GetAwaiter().GetResult();
            throw;
        }
        return new XmppStore(path, options, new StoreWriter(connection, options, log), readers, watcher);
    }

    /// <summary>
    /// The file holds StoredKey and ServerKey, enough to impersonate the server to a user, so a new
    /// file is readable by its owner only. SQLite gives the -wal and -shm files the same mode.
    /// An empty file is a valid empty SQLite database.
    /// </summary>
    private static void CreateOwnerOnlyFile(string path)
    {
        if (OperatingSystem.IsWindows() || File.Exists(path))
        {
            return;
        }
        try
        {
            using var file = new FileStream(path, new FileStreamOptions
            {
                Mode = FileMode.CreateNew,
                Access = FileAccess.Write,
                UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite,
            });
        }
        catch (IOException) when (File.Exists(path))
        {
            // Another process (the CLI or the daemon) created it first.
        }
    }

    // ---- Users ----

    /// <summary>Both SCRAM credentials of <paramref name="user"/>, read from disk at each call; null if there is no such user.</summary>
    public Task<UserCredentials?> GetCredentialsAsync(string user, CancellationToken cancellationToken = default)
    {
        if (!UserNames.TryNormalize(user, out var name, out _))
        {
            return Task.FromResult<UserCredentials?>(null);
        }
        return _readers.RunAsync(connection =>
        {
            using var command = connection.Command("""
                SELECT sha1_salt, sha1_iterations, sha1_stored_key, sha1_server_key,
                       sha256_salt, sha256_iterations, sha256_stored_key, sha256_server_key
                FROM users WHERE name = $name
                """);
            command.Parameters.AddWithValue("$name", name);
            using var reader = command.ExecuteReader();
            if (!reader.Read())
            {
                return null;
            }
            return new UserCredentials(name, ReadCredential(reader, 0, ScramHash.Sha1), ReadCredential(reader, 4, ScramHash.Sha256));
        }, cancellationToken);
    }

    public Task<bool> UserExistsAsync(string user, CancellationToken cancellationToken = default)
    {
        if (!UserNames.TryNormalize(user, out var name, out _))
        {
            return Task.FromResult(false);
        }
        return _readers.RunAsync(connection => UserExists(connection, name), cancellationToken);
    }

    /// <summary>Adds a user; false if the name is taken. Throws <see cref="ArgumentException"/> for an invalid name or password.</summary>
    public async Task<bool> AddUserAsync(string user, string password, CancellationToken cancellationToken = default)
    {
        var name = RequireName(user);
        var prepared = RequirePassword(password);
        // PBKDF2 costs milliseconds of CPU: never on the caller's thread.
        var credentials = await Task.Run(() => Derive(name, prepared), cancellationToken);
        return await _writer.ExecuteAsync(transaction => InsertUsers(transaction, [credentials]) == 1, cancellationToken);
    }

    /// <summary>Replaces both credentials of a user; false if there is no such user.</summary>
    public async Task<bool> SetPasswordAsync(string user, string password, CancellationToken cancellationToken = default)
    {
        var prepared = RequirePassword(password);
        if (!UserNames.TryNormalize(user, out var name, out _))
        {
            return false;
        }
        var credentials = await Task.Run(() => Derive(name, prepared), cancellationToken);
        return await _writer.ExecuteAsync(transaction =>
        {
            using var command = transaction.Command("""
                UPDATE users SET
                    sha1_salt = $sha1_salt, sha1_iterations = $sha1_iterations,
                    sha1_stored_key = $sha1_stored_key, sha1_server_key = $sha1_server_key,
                    sha256_salt = $sha256_salt, sha256_iterations = $sha256_iterations,
                    sha256_stored_key = $sha256_stored_key, sha256_server_key = $sha256_server_key
                WHERE name = $name
                """);
            command.Parameters.AddWithValue("$name", credentials.User);
            CredentialParameters.Add(command, "sha1").Set(credentials.Sha1);
            CredentialParameters.Add(command, "sha256").Set(credentials.Sha256);
            return command.ExecuteNonQuery() == 1;
        }, cancellationToken);
    }

    /// <summary>Removes a user with their roster and offline messages; false if there is no such user.</summary>
    public Task<bool> RemoveUserAsync(string user, CancellationToken cancellationToken = default)
    {
        if (!UserNames.TryNormalize(user, out var name, out _))
        {
            return Task.FromResult(false);
        }
        return _writer.ExecuteAsync(transaction =>
        {
            // ON DELETE CASCADE removes the roster and offline rows in the same transaction.
            using var command = transaction.Command("DELETE FROM users WHERE name = $name");
            command.Parameters.AddWithValue("$name", name);
            return command.ExecuteNonQuery() == 1;
        }, cancellationToken);
    }

    /// <summary>All user names, sorted by code point.</summary>
    public Task<IReadOnlyList<string>> ListUsersAsync(CancellationToken cancellationToken = default)
        => _readers.RunAsync<IReadOnlyList<string>>(connection =>
        {
            using var command = connection.Command("SELECT name FROM users ORDER BY name");
            using var reader = command.ExecuteReader();
            var names = new List<string>();
            while (reader.Read())
            {
                names.Add(reader.GetString(0));
            }
            return names;
        }, cancellationToken);

    /// <summary>
    /// Adds many users fast. Entries are taken in batches of <see cref="XmppStoreOptions.ImportBatchSize"/>:
    /// names already present are skipped before any key is derived, the keys of the rest are
    /// derived in parallel on every core, and the batch is inserted in one transaction. Batches
    /// already committed stay if the import is cancelled or fails; running it again skips them.
    /// </summary>
    public async Task<ImportResult> ImportUsersAsync(IAsyncEnumerable<(string User, string Password)> users, CancellationToken cancellationToken = default)
    {
        int added = 0, existing = 0, invalid = 0;
        var batch = new List<(string Name, string Password)>(_options.ImportBatchSize);
        await foreach (var (user, password) in users.WithCancellation(cancellationToken))
        {
            if (!UserNames.TryNormalize(user, out var name, out _) || !UserNames.TryNormalizePassword(password, out var prepared, out _))
            {
                invalid++;
                continue;
            }
            batch.Add((name, prepared));
            if (batch.Count == _options.ImportBatchSize)
            {
                var (batchAdded, batchExisting) = await ImportBatchAsync(batch, cancellationToken);
                added += batchAdded;
                existing += batchExisting;
                batch.Clear();
            }
        }
        if (batch.Count > 0)
        {
            var (batchAdded, batchExisting) = await ImportBatchAsync(batch, cancellationToken);
            added += batchAdded;
            existing += batchExisting;
        }
        return new ImportResult(added, existing, invalid);
    }

    private async Task<(int Added, int Existing)> ImportBatchAsync(List<(string Name, string Password)> batch, CancellationToken cancellationToken)
    {
        var fresh = await _readers.RunAsync(connection =>
        {
            var seen = new HashSet<string>(batch.Count, StringComparer.Ordinal);
            var result = new List<(string Name, string Password)>(batch.Count);
            foreach (var entry in batch)
            {
                if (seen.Add(entry.Name) && !UserExists(connection, entry.Name))
                {
                    result.Add(entry);
                }
            }
            return result;
        }, cancellationToken);

        var credentials = new UserCredentials[fresh.Count];
        await Task.Run(() => Parallel.For(0, fresh.Count,
            new ParallelOptions { CancellationToken = cancellationToken, MaxDegreeOfParallelism = Environment.ProcessorCount },
            i => credentials[i] = Derive(fresh[i].Name, fresh[i].Password)), cancellationToken);

        // A user added by someone else since the check above is skipped by ON CONFLICT DO NOTHING.
        var added = await _writer.ExecuteAsync(transaction => InsertUsers(transaction, credentials), cancellationToken);
        return (added, batch.Count - added);
    }

    // ---- Rosters ----

    /// <summary>The roster of <paramref name="owner"/>, by contact JID; empty for an unknown user.</summary>
    public Task<IReadOnlyList<RosterItem>> GetRosterAsync(string owner, CancellationToken cancellationToken = default)
    {
        if (!UserNames.TryNormalize(owner, out var name, out _))
        {
            return Task.FromResult<IReadOnlyList<RosterItem>>([]);
        }
        return _readers.RunAsync<IReadOnlyList<RosterItem>>(connection =>
        {
            using var command = connection.Command($"SELECT {RosterColumns} FROM roster WHERE owner = $owner ORDER BY contact");
            command.Parameters.AddWithValue("$owner", name);
            using var reader = command.ExecuteReader();
            var items = new List<RosterItem>();
            while (reader.Read())
            {
                items.Add(ReadRosterItem(reader));
            }
            return items;
        }, cancellationToken);
    }

    public Task<RosterItem?> GetRosterItemAsync(string owner, string contact, CancellationToken cancellationToken = default)
    {
        if (!UserNames.TryNormalize(owner, out var name, out _))
        {
            return Task.FromResult<RosterItem?>(null);
        }
        return _readers.RunAsync(connection =>
        {
            using var command = connection.Command($"SELECT {RosterColumns} FROM roster WHERE owner = $owner AND contact = $contact");
            command.Parameters.AddWithValue("$owner", name);
            command.Parameters.AddWithValue("$contact", contact);
            using var reader = command.ExecuteReader();
            return reader.Read() ? ReadRosterItem(reader) : null;
        }, cancellationToken);
    }

    /// <summary>Adds or replaces the item for <see cref="RosterItem.Jid"/>; false if the owner does not exist.</summary>
    public Task<bool> SetRosterItemAsync(string owner, RosterItem item, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(item.Jid, nameof(item));
        if (!UserNames.TryNormalize(owner, out var name, out _))
        {
            return Task.FromResult(false);
        }
        var groups = JsonSerializer.Serialize(item.Groups, StoreJson.Default.IReadOnlyListString);
        return _writer.ExecuteAsync(transaction =>
        {
            // The WHERE makes a missing owner a 0-row insert instead of a foreign-key error.
            using var command = transaction.Command("""
                INSERT INTO roster (owner, contact, name, subscription, ask, pending_in, groups)
                SELECT $owner, $contact, $name, $subscription, $ask, $pending_in, $groups
                WHERE EXISTS (SELECT 1 FROM users WHERE name = $owner)
                ON CONFLICT (owner, contact) DO UPDATE SET
                    name = excluded.name, subscription = excluded.subscription, ask = excluded.ask,
                    pending_in = excluded.pending_in, groups = excluded.groups
                """);
            command.Parameters.AddWithValue("$owner", name);
            command.Parameters.AddWithValue("$contact", item.Jid);
            command.Parameters.AddWithValue("$name", (object?)item.Name ?? DBNull.Value);
            command.Parameters.AddWithValue("$subscription", ToText(item.Subscription));
            command.Parameters.AddWithValue("$ask", item.AskSubscribe ? "subscribe" : DBNull.Value);
            command.Parameters.AddWithValue("$pending_in", item.PendingIn);
            command.Parameters.AddWithValue("$groups", groups);
            return command.ExecuteNonQuery() == 1;
        }, cancellationToken);
    }

    /// <summary>False if the owner had no item for <paramref name="contact"/>.</summary>
    public Task<bool> RemoveRosterItemAsync(string owner, string contact, CancellationToken cancellationToken = default)
    {
        if (!UserNames.TryNormalize(owner, out var name, out _))
        {
            return Task.FromResult(false);
        }
        return _writer.ExecuteAsync(transaction =>
        {
            using var command = transaction.Command("DELETE FROM roster WHERE owner = $owner AND contact = $contact");
            command.Parameters.AddWithValue("$owner", name);
            command.Parameters.AddWithValue("$contact", contact);
            return command.ExecuteNonQuery() == 1;
        }, cancellationToken);
    }

    // ---- Offline messages ----

    /// <summary>
    /// Stores a stanza for a user who is offline. Completes with <see cref="OfflineStoreResult.Stored"/>
    /// only after the transaction holding it has committed (fsynced), so the sender can be told
    /// it was accepted. The stanza is copied before this method returns: the caller may reuse
    /// its buffer at once.
    /// </summary>
    public Task<OfflineStoreResult> StoreOfflineAsync(string owner, ReadOnlyMemory<byte> stanza, DateTimeOffset stamp, CancellationToken cancellationToken = default)
    {
        if (!UserNames.TryNormalize(owner, out var name, out _))
        {
            return Task.FromResult(OfflineStoreResult.UnknownUser);
        }
        var bytes = stanza.ToArray();
        var unixMilliseconds = stamp.ToUnixTimeMilliseconds();
        var limit = _options.MaxOfflineMessagesPerUser;
        return _writer.ExecuteAsync(transaction =>
        {
            using var insert = transaction.Command("""
                INSERT INTO offline (owner, stamp, stanza)
                SELECT $owner, $stamp, $stanza
                WHERE EXISTS (SELECT 1 FROM users WHERE name = $owner)
                  AND (SELECT count(*) FROM offline WHERE owner = $owner) < $limit
                """);
            insert.Parameters.AddWithValue("$owner", name);
            insert.Parameters.AddWithValue("$stamp", unixMilliseconds);
            insert.Parameters.AddWithValue("$stanza", bytes);
            insert.Parameters.AddWithValue("$limit", limit);
            if (insert.ExecuteNonQuery() == 1)
            {
                return OfflineStoreResult.Stored;
            }
            return UserExists(transaction.Connection!, name, transaction) ? OfflineStoreResult.QuotaExceeded : OfflineStoreResult.UnknownUser;
        }, cancellationToken);
    }

    /// <summary>
    /// Takes up to <paramref name="max"/> of the user's oldest offline messages: reads them and
    /// deletes exactly those, in one transaction. Call again until fewer than
    /// <paramref name="max"/> come back; <paramref name="max"/> bounds the memory of one call.
    /// </summary>
    public Task<IReadOnlyList<OfflineMessage>> TakeOfflineAsync(string owner, int max = 100, CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(max, 1);
        if (!UserNames.TryNormalize(owner, out var name, out _))
        {
            return Task.FromResult<IReadOnlyList<OfflineMessage>>([]);
        }
        return _writer.ExecuteAsync<IReadOnlyList<OfflineMessage>>(transaction =>
        {
            var messages = new List<OfflineMessage>();
            using (var select = transaction.Command("SELECT id, stamp, stanza FROM offline WHERE owner = $owner ORDER BY id LIMIT $max"))
            {
                select.Parameters.AddWithValue("$owner", name);
                select.Parameters.AddWithValue("$max", max);
                using var reader = select.ExecuteReader();
                while (reader.Read())
                {
                    messages.Add(new OfflineMessage(reader.GetInt64(0), DateTimeOffset.FromUnixTimeMilliseconds(reader.GetInt64(1)), reader.GetFieldValue<byte[]>(2)));
                }
            }
            if (messages.Count > 0)
            {
                // Inside this write transaction no new row can appear below the last id read.
                using var delete = transaction.Command("DELETE FROM offline WHERE owner = $owner AND id <= $last");
                delete.Parameters.AddWithValue("$owner", name);
                delete.Parameters.AddWithValue("$last", messages[^1].Id);
                delete.ExecuteNonQuery();
            }
            return messages;
        }, cancellationToken);
    }

    /// <summary>Stops the change watcher, commits every write already queued, and closes the file.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }
        await _watcher.DisposeAsync();
        await _writer.StopAsync();
        await _readers.DisposeAsync();
    }

    // ---- Helpers ----

    private const string RosterColumns = "contact, name, subscription, ask, pending_in, groups";

    private UserCredentials Derive(string name, string preparedPassword) => new(
        name,
        ScramCredential.Derive(preparedPassword, ScramHash.Sha1, _options.Iterations),
        ScramCredential.Derive(preparedPassword, ScramHash.Sha256, _options.Iterations));

    private static string RequireName(string user)
        => UserNames.TryNormalize(user, out var name, out var error)
            ? name
            : throw new ArgumentException($"The user name '{user}' {error}.", nameof(user));

    private static string RequirePassword(string password)
        => UserNames.TryNormalizePassword(password, out var prepared, out var error)
            ? prepared
            : throw new ArgumentException($"The password {error}.", nameof(password));

    private static bool UserExists(SqliteConnection connection, string name, SqliteTransaction? transaction = null)
    {
        using var command = connection.Command("SELECT EXISTS (SELECT 1 FROM users WHERE name = $name)");
        command.Transaction = transaction;
        command.Parameters.AddWithValue("$name", name);
        return (long)command.ExecuteScalar()! == 1;
    }

    private static int InsertUsers(SqliteTransaction transaction, IReadOnlyList<UserCredentials> users)
    {
        using var command = transaction.Command("""
            INSERT INTO users (name, created,
                sha1_salt, sha1_iterations, sha1_stored_key, sha1_server_key,
                sha256_salt, sha256_iterations, sha256_stored_key, sha256_server_key)
            VALUES ($name, $created,
                $sha1_salt, $sha1_iterations, $sha1_stored_key, $sha1_server_key,
                $sha256_salt, $sha256_iterations, $sha256_stored_key, $sha256_server_key)
            ON CONFLICT (name) DO NOTHING
            """);
        var name = command.Parameters.Add("$name", SqliteType.Text);
        command.Parameters.AddWithValue("$created", DateTimeOffset.UtcNow.ToUnixTimeMilliseconds());
        var sha1 = CredentialParameters.Add(command, "sha1");
        var sha256 = CredentialParameters.Add(command, "sha256");
        var added = 0;
        // One prepared statement for the whole batch: only the values change.
        foreach (var user in users)
        {
            name.Value = user.User;
            sha1.Set(user.Sha1);
            sha256.Set(user.Sha256);
            added += command.ExecuteNonQuery();
        }
        return added;
    }

    private static ScramCredential ReadCredential(SqliteDataReader reader, int first, ScramHash hash) => new(
        hash,
        reader.GetFieldValue<byte[]>(first),
        reader.GetInt32(first + 1),
        reader.GetFieldValue<byte[]>(first + 2),
        reader.GetFieldValue<byte[]>(first + 3));

    private static RosterItem ReadRosterItem(SqliteDataReader reader) => new(
        reader.GetString(0),
        reader.IsDBNull(1) ? null : reader.GetString(1),
        FromText(reader.GetString(2)),
        !reader.IsDBNull(3),
        reader.GetBoolean(4),
        JsonSerializer.Deserialize(reader.GetString(5), StoreJson.Default.IReadOnlyListString) ?? []);

    private static string ToText(Subscription subscription) => subscription switch
    {
        Subscription.None => "none",
        Subscription.To => "to",
        Subscription.From => "from",
        Subscription.Both => "both",
        _ => throw new ArgumentOutOfRangeException(nameof(subscription), subscription, null),
    };

    private static Subscription FromText(string text) => text switch
    {
        "none" => Subscription.None,
        "to" => Subscription.To,
        "from" => Subscription.From,
        "both" => Subscription.Both,
        _ => throw new InvalidDataException($"Unknown subscription state '{text}' in the roster table."),
    };

    /// <summary>The four columns of one SCRAM credential, named <c>${prefix}_salt</c> and so on.</summary>
    private readonly record struct CredentialParameters(SqliteParameter Salt, SqliteParameter Iterations, SqliteParameter StoredKey, SqliteParameter ServerKey)
    {
        public static CredentialParameters Add(SqliteCommand command, string prefix) => new(
            command.Parameters.Add($"${prefix}_salt", SqliteType.Blob),
            command.Parameters.Add($"${prefix}_iterations", SqliteType.Integer),
            command.Parameters.Add($"${prefix}_stored_key", SqliteType.Blob),
            command.Parameters.Add($"${prefix}_server_key", SqliteType.Blob));

        public void Set(ScramCredential credential)
        {
            Salt.Value = credential.Salt;
            Iterations.Value = credential.Iterations;
            StoredKey.Value = credential.StoredKey;
            ServerKey.Value = credential.ServerKey;
        }
    }
}

[JsonSerializable(typeof(IReadOnlyList<string>))]
internal sealed partial class StoreJson : JsonSerializerContext;
