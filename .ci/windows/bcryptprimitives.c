/* bcryptprimitives.dll for running pcbulk.exe under Debian bookworm's wine 8, whose own
 * bcryptprimitives.dll lacks ProcessPrng: Rust's standard library (1.78 and later) calls it for
 * random bytes (HashMap keys among others), and the process cannot start without it.
 *
 * For the CI check only (.ci/windows-check.sh puts it beside the .exe); never shipped. Windows 10
 * and later have the real one. The bytes come from RtlGenRandom (advapi32's SystemFunction036),
 * which wine 8 provides; it takes a ULONG length, hence the loop. */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len)
{
    while (len > 0) {
        ULONG chunk = len > 0x40000000 ? 0x40000000 : (ULONG)len;
        if (!SystemFunction036(data, chunk))
            return FALSE;
        data += chunk;
        len -= chunk;
    }
    return TRUE;
}
