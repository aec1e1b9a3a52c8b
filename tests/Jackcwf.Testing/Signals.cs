using System.Runtime.InteropServices;

namespace Jackcwf.Testing;

/// <summary>POSIX signals for child processes (Process.Kill only knows SIGKILL).</summary>
public static class Signals
{
    public const int SigInt = 2;
    public const int SigQuit = 3;
    public const int SigKill = 9;
    public const int SigTerm = 15;

    /// <summary>Sends <paramref name="signal"/> to <paramref name="pid"/>; false when the process no longer exists.</summary>
    public static bool Send(int pid, int signal)
    {
        if (kill(pid, signal) == 0)
        {
            return true;
        }

        var errno = Marshal.GetLastPInvokeError();
        const int NoSuchProcess = 3;
        return errno == NoSuchProcess
            ? false
            : throw new InvalidOperationException($"kill({pid}, {signal}) failed with errno {errno}.");
    }

    /// <summary>Whether a process with <paramref name="pid"/> exists (signal 0 checks without sending anything).</summary>
    public static bool IsAlive(int pid) => kill(pid, 0) == 0 || Marshal.GetLastPInvokeError() != 3;

    // DllImport rather than LibraryImport: the signature is blittable and needs no unsafe code.
    [DllImport("libc", SetLastError = true)]
    private static extern int kill(int pid, int sig);
}
