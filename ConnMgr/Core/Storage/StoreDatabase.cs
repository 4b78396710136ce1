using System.Globalization;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Logging;

namespace ConnMgr.Core.Storage;

/// <summary>
/// Connections to the SQLite file and its schema. The schema version lives in
/// <c>PRAGMA user_version</c>; <see cref="s_migrations"/>[i] takes a database from version i to
/// i + 1. Append a migration for every change, never edit a released one.
/// </summary>
internal static class StoreDatabase
{
    private static readonly string[] s_migrations =
    [
        // 1: users, rosters, offline messages, and the change log the running core polls.
        """
        CREATE TABLE users (
            name            TEXT PRIMARY KEY NOT NULL,  -- normalised localpart (UserNames.TryNormalize)
            created         INTEGER NOT NULL,           -- Unix time, milliseconds
            sha1_salt       BLOB NOT NULL,
            sha1_iterations INTEGER NOT NULL,
            sha1_stored_key BLOB NOT NULL,
            sha1_server_key BLOB NOT NULL,
            sha256_salt       BLOB NOT NULL,
            sha256_iterations INTEGER NOT NULL,
            sha256_stored_key BLOB NOT NULL,
            sha256_server_key BLOB NOT NULL
        ) WITHOUT ROWID;

        CREATE TABLE roster (
            owner        TEXT NOT NULL REFERENCES users (name) ON DELETE CASCADE,
            contact      TEXT NOT NULL,              -- bare JID
            name         TEXT,
            subscription TEXT NOT NULL CHECK (subscription IN ('none', 'to', 'from', 'both')),
            ask          TEXT CHECK (ask IN ('subscribe')),
            pending_in   INTEGER NOT NULL DEFAULT 0 CHECK (pending_in IN (0, 1)),
            groups       TEXT NOT NULL DEFAULT '[]', -- JSON array of group names
            PRIMARY KEY (owner, contact)
        ) WITHOUT ROWID;

        CREATE TABLE offline (
            id     INTEGER PRIMARY KEY,
            owner  TEXT NOT NULL REFERENCES users (name) ON DELETE CASCADE,
            stamp  INTEGER NOT NULL,                 -- Unix time, milliseconds
            stanza BLOB NOT NULL                     -- the stanza as UTF-8 XML
        );
        CREATE INDEX offline_by_owner ON offline (owner, id);

        -- Written by triggers, so a change made by any process (the CLI, the daemon, an operator
        -- with the sqlite3 shell) reaches the running core. AUTOINCREMENT: a reader remembers the
        -- last seq it saw, so a seq must never be reused after old rows are pruned.
        CREATE TABLE user_changes (
            seq  INTEGER PRIMARY KEY AUTOINCREMENT,
            name TEXT NOT NULL,
            kind TEXT NOT NULL CHECK (kind IN ('removed', 'password')),
            at   INTEGER NOT NULL                    -- Unix time, seconds
        );

        -- A day of history is far more than the one-second poll needs.
        CREATE TRIGGER users_removed AFTER DELETE ON users BEGIN
            INSERT INTO user_changes (name, kind, at) VALUES (old.name, 'removed', unixepoch());
            DELETE FROM user_changes WHERE at < unixepoch() - 86400;
        END;
        CREATE TRIGGER users_password_changed AFTER UPDATE OF sha1_stored_key, sha256_stored_key ON users BEGIN
            INSERT INTO user_changes (name, kind, at) VALUES (new.name, 'password', unixepoch());
            DELETE FROM user_changes WHERE at < unixepoch() - 86400;
        END;
        """,
    ];

    /// <summary>The schema version this build writes.</summary>
    public static int SchemaVersion => s_migrations.Length;

    /// <summary>
    /// Opens the read-write connection, switches the file to WAL and brings the schema up to date.
    /// WAL lets readers (ours and the other process's) run while one writer commits.
    /// synchronous=FULL: in WAL mode NORMAL already survives a process crash, but may lose the
    /// last commits on power loss; FULL fsyncs the WAL at every commit, so an offline message
    /// acknowledged to its sender survives power loss too. Group commit pays that fsync once
    /// per batch, not once per message.
    /// </summary>
    public static SqliteConnection OpenReadWrite(string path, XmppStoreOptions options, ILogger logger)
    {
        var connection = Open(path, SqliteOpenMode.ReadWriteCreate, options);
        try
        {
            var journal = (string?)connection.ExecuteScalar("PRAGMA journal_mode = WAL");
            if (!string.Equals(journal, "wal", StringComparison.OrdinalIgnoreCase))
            {
                throw new InvalidOperationException($"SQLite could not put {path} in WAL mode (journal_mode is {journal}); is it on a network file system?");
            }
            connection.Execute("PRAGMA synchronous = FULL");
            Migrate(connection, path, logger);
            return connection;
        }
        catch
        {
            connection.Dispose();
            throw;
        }
    }

    public static SqliteConnection OpenReadOnly(string path, XmppStoreOptions options)
        => Open(path, SqliteOpenMode.ReadOnly, options);

    private static SqliteConnection Open(string path, SqliteOpenMode mode, XmppStoreOptions options)
    {
        var connectionString = new SqliteConnectionStringBuilder
        {
            DataSource = path,
            Mode = mode,
            // Each connection lives as long as the store; pooling would only keep files open after Dispose.
            Pooling = false,
            ForeignKeys = true,
            // Microsoft.Data.Sqlite retries a busy statement until this many seconds have passed.
            DefaultTimeout = Math.Max(1, (int)Math.Ceiling(options.BusyTimeout.TotalSeconds)),
        }.ToString();
        var connection = new SqliteConnection(connectionString);
        try
        {
            connection.Open();
            // SQLite's own busy handler sleeps until the lock is free instead of polling.
            connection.Execute(string.Create(CultureInfo.InvariantCulture, $"PRAGMA busy_timeout = {(long)options.BusyTimeout.TotalMilliseconds}"));
            return connection;
        }
        catch
        {
            connection.Dispose();
            throw;
        }
    }

    private static void Migrate(SqliteConnection connection, string path, ILogger logger)
    {
        var found = UserVersion(connection, null);
        if (found == SchemaVersion)
        {
            StoreLog.Opened(logger, path, found);
            return;
        }

        // BEGIN IMMEDIATE: when the daemon and the CLI open a new file at once, the second waits
        // here and then finds the schema already migrated.
        using var transaction = connection.BeginTransaction();
        var from = UserVersion(connection, transaction);
        if (from > SchemaVersion)
        {
            throw new InvalidOperationException($"{path} has schema version {from}, newer than the {SchemaVersion} this build of connmgr knows; use a newer connmgr.");
        }
        for (var version = from; version < SchemaVersion; version++)
        {
            using var migration = transaction.Command(s_migrations[version]);
            migration.ExecuteNonQuery();
        }
        using (var setVersion = transaction.Command(string.Create(CultureInfo.InvariantCulture, $"PRAGMA user_version = {SchemaVersion}")))
        {
            setVersion.ExecuteNonQuery();
        }
        transaction.Commit();
        if (from != SchemaVersion)
        {
            StoreLog.Migrated(logger, path, from, SchemaVersion);
        }
        StoreLog.Opened(logger, path, SchemaVersion);
    }

    private static int UserVersion(SqliteConnection connection, SqliteTransaction? transaction)
    {
        using var command = connection.Command("PRAGMA user_version");
        command.Transaction = transaction;
        return Convert.ToInt32(command.ExecuteScalar(), CultureInfo.InvariantCulture);
    }

    private static void Execute(this SqliteConnection connection, string sql)
    {
        using var command = connection.Command(sql);
        command.ExecuteNonQuery();
    }

    private static object? ExecuteScalar(this SqliteConnection connection, string sql)
    {
        using var command = connection.Command(sql);
        return command.ExecuteScalar();
    }

    public static SqliteCommand Command(this SqliteConnection connection, string sql)
    {
        var command = connection.CreateCommand();
        command.CommandText = sql;
        return command;
    }

    public static SqliteCommand Command(this SqliteTransaction transaction, string sql)
    {
        var command = transaction.Connection!.Command(sql);
        command.Transaction = transaction;
        return command;
    }
}
