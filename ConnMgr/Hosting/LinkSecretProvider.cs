using System.Security.Cryptography;
using ConnMgr.Options;
using Microsoft.Extensions.Options;

namespace ConnMgr.Hosting;

/// <summary>
/// The shared secret of the upstream link handshake (spec section 3.6), for both
/// ends: <c>Upstream:Secret</c> when set; otherwise a secret generated once into
/// <c>DataDirectory/link-secret</c> (readable by the daemon's user only) and read
/// from there on every later start. Edges on other machines that link to this
/// embedded core need that file's content as their <c>Upstream:Secret</c>.
/// </summary>
internal sealed class LinkSecretProvider(IOptions<UpstreamOptions> upstream, IOptions<DaemonOptions> daemon)
{
    internal const string FileName = "link-secret";

    // 32 random bytes: the SHA-1 handshake digest is 160 bits, so a longer secret adds nothing.
    private const int SecretBytes = 32;

    private const UnixFileMode OwnerOnlyFile = UnixFileMode.UserRead | UnixFileMode.UserWrite;
    private const UnixFileMode OwnerOnlyDirectory = OwnerOnlyFile | UnixFileMode.UserExecute;

    private readonly Lock _lock = new();
    private string? _secret;

    /// <summary>The secret; the first call may create the file. Throws <see cref="DaemonStartupException"/> when the file is unusable.</summary>
    public string GetSecret()
    {
        lock (_lock)
        {
            return _secret ??= string.IsNullOrEmpty(upstream.Value.Secret)
                ? ReadOrCreate(daemon.Value.DataDirectoryFullPath)
                : upstream.Value.Secret;
        }
    }

    internal static string ReadOrCreate(string directory)
    {
        string path = Path.Combine(directory, FileName);
        try
        {
            if (!File.Exists(path))
            {
                Create(directory, path);
            }
            string secret = File.ReadAllText(path).Trim();
            if (secret.Length == 0 || secret.Any(c => c < 0x20 || c > 0x7E))
            {
                throw new DaemonStartupException($"{path} must hold the link secret as one line of printable ASCII; delete it to generate a new one");
            }
            return secret;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new DaemonStartupException($"cannot read or create the link secret {path}: {e.Message}", e);
        }
    }

    private static void Create(string directory, string path)
    {
        var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write };
        if (OperatingSystem.IsWindows())
        {
            Directory.CreateDirectory(directory);
        }
        else
        {
            Directory.CreateDirectory(directory, OwnerOnlyDirectory);
            options.UnixCreateMode = OwnerOnlyFile;
        }
        // Written beside the target and moved into place without overwriting, so
        // that two processes starting at once agree on one secret and neither
        // ever reads a half-written file.
        string temporary = Path.Combine(directory, "." + FileName + "." + Path.GetRandomFileName());
        try
        {
            using (var file = new StreamWriter(new FileStream(temporary, options)))
            {
                file.WriteLine(Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(SecretBytes)));
            }
            File.Move(temporary, path, overwrite: false);
        }
        catch (IOException) when (File.Exists(path))
        {
            // Another process won the race; its secret is the one.
        }
        finally
        {
            File.Delete(temporary);
        }
    }
}
