using System.Globalization;
using System.Net.Security;
using System.Reflection;
using System.Runtime.InteropServices;
using Microsoft.Extensions.Logging;

namespace ConnMgr.Edge.Tls;

/// <summary>
/// Lets OpenSSL free the record buffers of a TLS connection while it idles: OpenSSL's
/// <c>SSL_MODE_RELEASE_BUFFERS</c> (SSL_CTX_set_mode(3)). Without it every <see cref="SslStream"/>
/// on Linux keeps a read and a write buffer of about 17 KiB each (a 16 KiB record, RFC 8446
/// section 5.1, plus header and tag) for as long as the connection lives, even with no byte in
/// flight. With it they are freed when empty and allocated again for the next record.
/// </summary>
/// <remarks>
/// <para>.NET 10 neither sets this mode nor offers a switch for it: its OpenSSL shim
/// (System.Security.Cryptography.Native, pal_ssl.c) sets options, ciphers, session caching and
/// ALPN on the SSL_CTX it creates, never a mode, and exposes neither the SSL_CTX nor the SSL. So
/// this class reads the SSL* from SslStream's private <c>_securityContext</c> field (a
/// <c>SafeSslHandle</c>, whose handle is the SSL*) and calls <c>SSL_ctrl(ssl, SSL_CTRL_MODE,
/// SSL_MODE_RELEASE_BUFFERS, NULL)</c> in the libssl the runtime itself loaded: the one mapped into
/// this process, never a second copy that would not know the SSL object.</para>
/// <para>It fails closed: when anything differs from what was checked (another OS, a renamed field,
/// a different handle type, no or several libssl mapped, no SSL_ctrl export, a mode that does not
/// stick), nothing is changed, one warning is logged, and TLS works as before with its buffers
/// kept. This reflection lives here and nowhere else.</para>
/// <para>Call it right after the handshake and before the connection's loops start: an SSL object
/// is not thread-safe, and then nothing else touches it.</para>
/// </remarks>
internal static partial class OpenSslIdleBuffers
{
    /// <summary>SSL_CTRL_MODE in openssl/ssl.h (unchanged from 1.0.0 to 3.x).</summary>
    private const int SslCtrlMode = 33;

    /// <summary>SSL_MODE_RELEASE_BUFFERS in openssl/ssl.h (unchanged from 1.0.0 to 3.x).</summary>
    private const long SslModeReleaseBuffers = 0x10;

    private const string SslHandleTypeName = "Microsoft.Win32.SafeHandles.SafeSslHandle";

    private static readonly Lock s_bindLock = new();
    private static Binding? s_binding;
    private static string? s_unavailable;

    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    private delegate CLong SslCtrl(nint ssl, int command, CLong larg, nint parg);

    /// <summary>Why the mode cannot be set on this runtime, once a handshake has tried; null while it works.</summary>
    public static string? Unavailable => Volatile.Read(ref s_unavailable);

    /// <summary>
    /// Sets SSL_MODE_RELEASE_BUFFERS on the authenticated <paramref name="stream"/>. Returns false,
    /// and logs one warning for the whole process, when it cannot be done here.
    /// </summary>
    public static bool TryEnable(SslStream stream, ILogger logger)
    {
        var binding = Bind(logger);
        if (binding is null)
        {
            return false;
        }
        var mode = binding.Control(stream, SslModeReleaseBuffers, out var unexpected);
        if (unexpected is not null)
        {
            Disable(unexpected, logger);
            return false;
        }
        if (mode is null)
        {
            // This stream is not authenticated or already closed: nothing to save, nothing wrong.
            return false;
        }
        if ((mode.Value & SslModeReleaseBuffers) == 0)
        {
            Disable($"SSL_ctrl did not set SSL_MODE_RELEASE_BUFFERS (mode {mode.Value.ToString("x", CultureInfo.InvariantCulture)})", logger);
            return false;
        }
        return true;
    }

    /// <summary>Whether the mode is set on <paramref name="stream"/> (tests and diagnostics); null when it cannot be read.</summary>
    internal static bool? IsEnabled(SslStream stream, ILogger logger)
    {
        // SSL_CTRL_MODE with no bits adds none and returns the current mode.
        var mode = Bind(logger)?.Control(stream, 0, out _);
        return mode is null ? null : (mode.Value & SslModeReleaseBuffers) != 0;
    }

    private static Binding? Bind(ILogger logger)
    {
        var binding = Volatile.Read(ref s_binding);
        if (binding is not null || Volatile.Read(ref s_unavailable) is not null)
        {
            return binding;
        }
        lock (s_bindLock)
        {
            if (s_binding is null && s_unavailable is null)
            {
                if (Binding.TryCreate(out binding, out var problem))
                {
                    Volatile.Write(ref s_binding, binding);
                }
                else
                {
                    Disable(problem, logger);
                }
            }
            return s_binding;
        }
    }

    private static void Disable(string problem, ILogger logger)
    {
        if (Interlocked.CompareExchange(ref s_unavailable, problem, null) is null)
        {
            Volatile.Write(ref s_binding, null);
            Unsupported(logger, problem);
        }
    }

    [LoggerMessage(EventId = 1105, Level = LogLevel.Warning,
        Message = "Idle TLS connections keep OpenSSL's record buffers (about 34 KiB each): SSL_MODE_RELEASE_BUFFERS cannot be set on this runtime ({Problem})")]
    private static partial void Unsupported(ILogger logger, string problem);

    /// <summary>What was found once: the field holding the SSL handle, its type, and SSL_ctrl.</summary>
    private sealed class Binding(FieldInfo contextField, Type handleType, SslCtrl sslCtrl)
    {
        public static bool TryCreate(out Binding? binding, out string problem)
        {
            binding = null;
            if (!OperatingSystem.IsLinux())
            {
                problem = "SslStream uses OpenSSL only on Linux here";
                return false;
            }
            try
            {
                var field = typeof(SslStream).GetField("_securityContext", BindingFlags.Instance | BindingFlags.NonPublic);
                if (field is null || !typeof(SafeHandle).IsAssignableFrom(field.FieldType))
                {
                    problem = "SslStream has no SafeHandle field _securityContext";
                    return false;
                }
                var handleType = typeof(SslStream).Assembly.GetType(SslHandleTypeName);
                if (handleType is null || !field.FieldType.IsAssignableFrom(handleType))
                {
                    problem = $"{SslHandleTypeName} is not what _securityContext holds";
                    return false;
                }
                if (!TryFindLoadedLibSsl(out var path, out problem))
                {
                    return false;
                }
                if (!NativeLibrary.TryLoad(path, out var library) || !NativeLibrary.TryGetExport(library, "SSL_ctrl", out var export))
                {
                    problem = $"no SSL_ctrl in {path}";
                    return false;
                }
                binding = new Binding(field, handleType, Marshal.GetDelegateForFunctionPointer<SslCtrl>(export));
                problem = "";
                return true;
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                problem = $"{e.GetType().Name}: {e.Message}";
                return false;
            }
        }

        /// <summary>
        /// SSL_ctrl(SSL_CTRL_MODE, <paramref name="bits"/>) on the stream's SSL: the resulting mode, or
        /// null when the stream has no live SSL (not authenticated, closed). <paramref name="unexpected"/>
        /// says what differs from the checked runtime, and then nothing was called.
        /// </summary>
        public long? Control(SslStream stream, long bits, out string? unexpected)
        {
            unexpected = null;
            if (contextField.GetValue(stream) is not SafeHandle handle)
            {
                return null;
            }
            if (handle.GetType() != handleType)
            {
                unexpected = $"_securityContext holds a {handle.GetType().FullName}, not a {SslHandleTypeName}";
                return null;
            }
            var added = false;
            try
            {
                handle.DangerousAddRef(ref added);
                var ssl = handle.DangerousGetHandle();
                return handle.IsInvalid || ssl == 0 ? null : (long)sslCtrl(ssl, SslCtrlMode, new CLong((nint)bits), 0).Value;
            }
            catch (ObjectDisposedException)
            {
                // Closed meanwhile: the connection is ending, there is nothing to save.
                return null;
            }
            finally
            {
                if (added)
                {
                    handle.DangerousRelease();
                }
            }
        }

        /// <summary>
        /// The libssl the runtime loaded, read from /proc/self/maps: exactly one, or none to use.
        /// The runtime picks among libssl.so.3, .so.1.1 and others at start, so guessing a name could
        /// load a second library.
        /// </summary>
        private static bool TryFindLoadedLibSsl(out string path, out string problem)
        {
            path = "";
            var found = new HashSet<string>(StringComparer.Ordinal);
            foreach (var line in File.ReadLines("/proc/self/maps"))
            {
                var slash = line.IndexOf('/');
                if (slash < 0)
                {
                    continue;
                }
                var file = line[slash..];
                var name = Path.GetFileName(file);
                if (name.StartsWith("libssl.so", StringComparison.Ordinal) || name.StartsWith("libssl-", StringComparison.Ordinal))
                {
                    found.Add(file);
                }
            }
            if (found.Count != 1)
            {
                problem = found.Count == 0 ? "no libssl is loaded" : $"several libssl are loaded: {string.Join(", ", found)}";
                return false;
            }
            path = found.First();
            problem = "";
            return true;
        }
    }
}
