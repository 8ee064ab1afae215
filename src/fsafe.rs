//! Opening the files pcbulk writes, so that each is what it seems: never a link, a device, or a
//! file that has other names.
//!
//! The results, the journal, the undo file, the token cache and the scratch files beside the results
//! are all opened here. A path is refused when it is a symbolic link (writing through it would
//! change the file it points to), anything but a regular file (a pipe, a device, a directory, a
//! socket), or a regular file with more than one hard link (its other name may be the input, or
//! someone else's file). The path is looked at before it is opened (opening a pipe or a device can
//! block or act), opened without following a link, and the open file is looked at again, so a swap
//! between the look and the open is caught too. A file is only emptied once it has passed.

use std::fmt;
use std::fs::{File, Metadata, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

/// Why a path was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    Symlink,
    /// Anything but a regular file: what it is, with its article ("a directory").
    NotRegular(&'static str),
    /// A regular file with this many names.
    HardLinks(u64),
}

/// A path pcbulk will not write, with what to do instead. Carried inside an `io::Error`, whose
/// message it is, so callers name the file once in their own context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    pub reason: Reason,
    /// What the user can do, e.g. "give --out another path".
    pub fix: &'static str,
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.reason {
            Reason::Symlink => f.write_str(
                "it is a symbolic link, and pcbulk never writes through a link (it would change \
                 the file the link points to)",
            )?,
            Reason::NotRegular(what) => write!(f, "it is {what}, not a regular file")?,
            Reason::HardLinks(n) => write!(
                f,
                "it is a file with {n} hard links, and writing it would change it under its other \
                 names too (one may be the input)"
            )?,
        }
        write!(f, "; {}", self.fix)
    }
}

impl std::error::Error for Refused {}

impl Refused {
    fn into_io(self) -> io::Error {
        io::Error::new(io::ErrorKind::InvalidInput, self)
    }
}

/// The refusal an error carries, if it is one.
pub fn refusal(e: &io::Error) -> Option<&Refused> {
    e.get_ref()?.downcast_ref::<Refused>()
}

/// What a file's metadata says is wrong with writing it, if anything.
fn judge(m: &Metadata) -> Option<Reason> {
    let t = m.file_type();
    if t.is_symlink() {
        return Some(Reason::Symlink);
    }
    if t.is_dir() {
        return Some(Reason::NotRegular("a directory"));
    }
    if !t.is_file() {
        return Some(Reason::NotRegular(special_kind(&t)));
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        if m.nlink() > 1 {
            return Some(Reason::HardLinks(m.nlink()));
        }
    }
    None
}

#[cfg(unix)]
fn special_kind(t: &std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if t.is_fifo() {
        "a named pipe"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else if t.is_socket() {
        "a socket"
    } else {
        "a special file"
    }
}

#[cfg(not(unix))]
fn special_kind(_: &std::fs::FileType) -> &'static str {
    "a special file"
}

/// Looks at what is at `path` without following a link: `Ok(None)` when nothing is there yet,
/// the metadata of a regular file pcbulk may write, or the refusal.
pub fn look(path: &Path, fix: &'static str) -> io::Result<Option<Metadata>> {
    match std::fs::symlink_metadata(path) {
        Ok(m) => match judge(&m) {
            Some(reason) => Err(Refused { reason, fix }.into_io()),
            None => Ok(Some(m)),
        },
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Opens with `opts` after [`look`], without following a link, and checks the open file again.
fn open_checked(path: &Path, opts: &mut OpenOptions, fix: &'static str) -> io::Result<File> {
    look(path, fix)?;
    no_follow(opts);
    let file = opts.open(path).map_err(|e| {
        if is_link_refused(&e) {
            Refused {
                reason: Reason::Symlink,
                fix,
            }
            .into_io()
        } else {
            e
        }
    })?;
    if let Some(reason) = judge(&file.metadata()?).or_else(|| other_names(&file)) {
        return Err(Refused { reason, fix }.into_io());
    }
    Ok(file)
}

/// Windows: the open file's number of names, which the path's metadata does not carry there (Unix
/// has it in [`judge`]); so on Windows a hard-linked file is caught by every open, not by [`look`].
#[cfg(windows)]
fn other_names(file: &File) -> Option<Reason> {
    match windows::links(file) {
        Ok(n) if n > 1 => Some(Reason::HardLinks(n)),
        _ => None,
    }
}

#[cfg(not(windows))]
fn other_names(_: &File) -> Option<Reason> {
    None
}

/// A link at the last component: the open fails instead of following it; a pipe that appeared
/// since the look fails instead of waiting for a reader; a terminal never becomes ours.
#[cfg(unix)]
fn no_follow(opts: &mut OpenOptions) {
    use std::os::unix::fs::OpenOptionsExt;
    // O_NONBLOCK changes nothing for a regular file, the only kind that passes.
    opts.custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY);
}

/// Windows: a link or junction (a reparse point) at the path is opened itself, not followed; the
/// open file then shows as a link and [`judge`] refuses it, as `ELOOP` does on Unix.
#[cfg(windows)]
fn no_follow(opts: &mut OpenOptions) {
    use std::os::windows::fs::OpenOptionsExt;
    opts.custom_flags(windows_sys::Win32::Storage::FileSystem::FILE_FLAG_OPEN_REPARSE_POINT);
}

#[cfg(not(any(unix, windows)))]
fn no_follow(_: &mut OpenOptions) {}

#[cfg(unix)]
fn is_link_refused(e: &io::Error) -> bool {
    e.raw_os_error() == Some(libc::ELOOP)
}

#[cfg(not(unix))]
fn is_link_refused(_: &io::Error) -> bool {
    false
}

/// Creates `path`, or empties the regular file there, to write it from the start.
pub fn create(path: &Path, fix: &'static str) -> io::Result<File> {
    // Not truncated by the open: only once the open file has passed, never a file with other names.
    let file = open_checked(path, OpenOptions::new().write(true).create(true), fix)?;
    file.set_len(0)?;
    Ok(file)
}

/// Opens the existing regular file at `path` to read it and append to it.
pub fn open_append(path: &Path, fix: &'static str) -> io::Result<File> {
    open_checked(path, OpenOptions::new().read(true).append(true), fix)
}

/// Opens the regular file at `path` to append to it, creating it (0600: the owner's only) if it is
/// not there yet; never emptied. For a file many runs add lines to, such as the list of finished runs.
pub fn append_or_create(path: &Path, fix: &'static str) -> io::Result<File> {
    let mut opts = OpenOptions::new();
    opts.read(true).append(true).create(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    open_checked(path, &mut opts, fix)
}

/// Opens the regular file at `path` to read it (a pipe or a device would block or never end).
pub fn open_read(path: &Path, fix: &'static str) -> io::Result<File> {
    open_checked(path, OpenOptions::new().read(true), fix)
}

/// Permissions of a fresh file: the owner's only, or what the umask allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// 0600: a secret, or scratch data nobody else needs.
    Owner,
    /// 0666 less the umask, as any new file (it becomes a file the user reads).
    Default,
}

/// A new file beside `near`, `.{name of near}.{random}.{suffix}`, that did not exist before: created
/// exclusively (no file or link already there is reused), not following a link. Returns its path.
pub fn fresh(near: &Path, suffix: &str, access: Access) -> io::Result<(PathBuf, File)> {
    let dir = match near.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = near.file_name().unwrap_or_default().to_string_lossy();
    let mut tries = 0;
    loop {
        let path = dir.join(format!(".{name}.{:016x}.{suffix}", rand::random::<u64>()));
        let mut opts = OpenOptions::new();
        opts.read(true).write(true).create_new(true);
        no_follow(&mut opts);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(match access {
                Access::Owner => 0o600,
                Access::Default => 0o666,
            });
        }
        #[cfg(windows)]
        if access == Access::Owner {
            // WRITE_DAC too, to give the new file its owner-only access list (see `windows`).
            use std::os::windows::fs::OpenOptionsExt;
            use windows_sys::Win32::Foundation::{GENERIC_READ, GENERIC_WRITE};
            use windows_sys::Win32::Storage::FileSystem::WRITE_DAC;
            opts.access_mode(GENERIC_READ | GENERIC_WRITE | WRITE_DAC);
        }
        #[cfg(not(any(unix, windows)))]
        let _ = access;
        match opts.open(&path) {
            Ok(f) => return owner_only(access, &path, f).map(|f| (path, f)),
            // Someone else's file by that name: another name (64 random bits: a clash is chance
            // only if someone plants names, and then the next one is as unlikely).
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && tries < 8 => tries += 1,
            Err(e) => return Err(e),
        }
    }
}

/// Windows: a fresh [`Access::Owner`] file gets an access list with one entry, the user's, before
/// anything is written to it (otherwise it inherits its folder's, which may let others read it).
/// The file is removed when that fails.
#[cfg(windows)]
fn owner_only(access: Access, path: &Path, file: File) -> io::Result<File> {
    if access == Access::Owner {
        if let Err(e) = windows::owner_only(&file) {
            drop(file);
            let _ = std::fs::remove_file(path);
            return Err(e);
        }
    }
    Ok(file)
}

#[cfg(not(windows))]
fn owner_only(_: Access, _: &Path, file: File) -> io::Result<File> {
    Ok(file)
}

/// Writes `bytes` to a [`fresh`] file (fsynced), then renames it over `path`, so `path` is never
/// half written and never written through. `path` itself must pass [`look`] (a link there would be
/// replaced, not followed, but the user pointed it somewhere on purpose or by mistake: refused).
pub fn replace(path: &Path, bytes: &[u8], access: Access, fix: &'static str) -> io::Result<()> {
    use std::io::Write;
    look(path, fix)?;
    let (tmp, mut file) = fresh(path, "tmp", access)?;
    let written = file
        .write_all(bytes)
        .and_then(|()| file.sync_all())
        .and_then(|()| {
            drop(file);
            // Looked at again just before: a rename never writes through a link, but it would
            // replace a device node or a name of another file.
            look(path, fix)?;
            std::fs::rename(&tmp, path)
        });
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

/// The Windows calls behind [`other_names`] and [`owner_only`].
#[cfg(windows)]
mod windows {
    use std::fs::File;
    use std::io;
    use std::os::windows::io::AsRawHandle;
    use windows_sys::Win32::Foundation::{CloseHandle, ERROR_SUCCESS, HANDLE};
    use windows_sys::Win32::Security::Authorization::{SetSecurityInfo, SE_FILE_OBJECT};
    use windows_sys::Win32::Security::{
        AddAccessAllowedAce, GetLengthSid, GetTokenInformation, InitializeAcl, TokenUser,
        ACCESS_ALLOWED_ACE, ACL, ACL_REVISION, DACL_SECURITY_INFORMATION,
        PROTECTED_DACL_SECURITY_INFORMATION, TOKEN_QUERY, TOKEN_USER,
    };
    use windows_sys::Win32::Storage::FileSystem::{
        GetFileInformationByHandle, BY_HANDLE_FILE_INFORMATION, FILE_ALL_ACCESS,
    };
    use windows_sys::Win32::System::Threading::{GetCurrentProcess, OpenProcessToken};

    /// How many names the open file has.
    pub(super) fn links(file: &File) -> io::Result<u64> {
        // SAFETY: a valid handle and a zeroed plain-data struct for the call to fill.
        unsafe {
            let mut info: BY_HANDLE_FILE_INFORMATION = std::mem::zeroed();
            if GetFileInformationByHandle(file.as_raw_handle() as HANDLE, &mut info) == 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(u64::from(info.nNumberOfLinks))
        }
    }

    /// Replaces the open file's access list with one entry, full access for the user this process
    /// runs as, protected from what the folder would pass down.
    pub(super) fn owner_only(file: &File) -> io::Result<()> {
        // A TOKEN_USER and the SID it points to (at most 68 bytes), 8-byte aligned.
        let mut user = [0u64; 64];
        token_user(&mut user)?;
        // SAFETY: `token_user` filled `user` with a TOKEN_USER whose SID lies inside it; the
        // access list is built in a buffer sized for one entry with that SID, and both outlive
        // the calls.
        unsafe {
            let sid = (*(user.as_ptr() as *const TOKEN_USER)).User.Sid;
            let size = std::mem::size_of::<ACL>() + std::mem::size_of::<ACCESS_ALLOWED_ACE>()
                - std::mem::size_of::<u32>()
                + GetLengthSid(sid) as usize;
            let mut acl = vec![0u64; size.div_ceil(8)];
            let acl = acl.as_mut_ptr() as *mut ACL;
            if InitializeAcl(acl, (size.div_ceil(8) * 8) as u32, ACL_REVISION) == 0
                || AddAccessAllowedAce(acl, ACL_REVISION, FILE_ALL_ACCESS, sid) == 0
            {
                return Err(io::Error::last_os_error());
            }
            let rc = SetSecurityInfo(
                file.as_raw_handle() as HANDLE,
                SE_FILE_OBJECT,
                DACL_SECURITY_INFORMATION | PROTECTED_DACL_SECURITY_INFORMATION,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                acl,
                std::ptr::null(),
            );
            if rc != ERROR_SUCCESS {
                return Err(io::Error::from_raw_os_error(rc as i32));
            }
        }
        Ok(())
    }

    /// The process token's user (TOKEN_USER) into `buf`.
    fn token_user(buf: &mut [u64; 64]) -> io::Result<()> {
        // SAFETY: the token handle is closed once read; the buffer's length is passed.
        unsafe {
            let mut token: HANDLE = std::ptr::null_mut();
            if OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY, &mut token) == 0 {
                return Err(io::Error::last_os_error());
            }
            let mut len = 0u32;
            let ok = GetTokenInformation(
                token,
                TokenUser,
                buf.as_mut_ptr().cast(),
                std::mem::size_of_val(buf) as u32,
                &mut len,
            );
            let err = io::Error::last_os_error();
            CloseHandle(token);
            if ok == 0 {
                return Err(err);
            }
        }
        Ok(())
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::{symlink, PermissionsExt};

    const FIX: &str = "give --out another path";

    fn reason(r: io::Result<impl Sized>) -> Reason {
        let e = r.err().expect("refused");
        refusal(&e)
            .unwrap_or_else(|| panic!("not a refusal: {e}"))
            .reason
    }

    #[test]
    fn a_new_path_is_created_and_a_plain_file_is_emptied() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("out.csv");
        create(&p, FIX).unwrap();
        assert!(p.is_file());
        std::fs::write(&p, "old content").unwrap();
        drop(create(&p, FIX).unwrap());
        assert_eq!(std::fs::read(&p).unwrap(), b"");
    }

    #[test]
    fn a_link_is_refused_and_what_it_points_to_is_untouched() {
        let d = tempfile::tempdir().unwrap();
        let target = d.path().join("precious.csv");
        std::fs::write(&target, "keep me").unwrap();
        let link = d.path().join("out.csv");
        symlink(&target, &link).unwrap();
        assert_eq!(reason(create(&link, FIX)), Reason::Symlink);
        assert_eq!(reason(open_append(&link, FIX)), Reason::Symlink);
        let dangling = d.path().join("dangling.csv");
        symlink(d.path().join("nowhere"), &dangling).unwrap();
        assert_eq!(reason(create(&dangling, FIX)), Reason::Symlink);
        assert!(
            !d.path().join("nowhere").exists(),
            "no file made through it"
        );
        assert_eq!(std::fs::read(&target).unwrap(), b"keep me");
    }

    #[test]
    fn a_link_swapped_in_after_the_look_is_not_followed() {
        let d = tempfile::tempdir().unwrap();
        let target = d.path().join("precious.csv");
        std::fs::write(&target, "keep me").unwrap();
        let link = d.path().join("out.csv");
        symlink(&target, &link).unwrap();
        // The open alone, as if the look had seen a plain file.
        let mut opts = OpenOptions::new();
        opts.write(true).create(true);
        no_follow(&mut opts);
        let e = opts.open(&link).unwrap_err();
        assert!(is_link_refused(&e), "{e}");
        assert_eq!(std::fs::read(&target).unwrap(), b"keep me");
    }

    #[test]
    fn append_or_create_adds_to_a_file_the_owners_only_and_refuses_a_link() {
        use std::io::Write;
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("runs");
        append_or_create(&p, FIX)
            .unwrap()
            .write_all(b"one\n")
            .unwrap();
        append_or_create(&p, FIX)
            .unwrap()
            .write_all(b"two\n")
            .unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"one\ntwo\n");
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let target = d.path().join("precious");
        std::fs::write(&target, "keep me").unwrap();
        let link = d.path().join("linked-runs");
        symlink(&target, &link).unwrap();
        assert_eq!(reason(append_or_create(&link, FIX)), Reason::Symlink);
        assert_eq!(std::fs::read(&target).unwrap(), b"keep me");
    }

    #[test]
    fn a_second_name_of_a_file_is_refused_and_the_file_keeps_its_bytes() {
        let d = tempfile::tempdir().unwrap();
        let input = d.path().join("in.csv");
        std::fs::write(&input, "the input").unwrap();
        let out = d.path().join("out.csv");
        std::fs::hard_link(&input, &out).unwrap();
        assert_eq!(reason(create(&out, FIX)), Reason::HardLinks(2));
        assert_eq!(std::fs::read(&input).unwrap(), b"the input");
    }

    #[test]
    fn directories_pipes_and_devices_are_refused_before_they_are_opened() {
        let d = tempfile::tempdir().unwrap();
        assert_eq!(
            reason(create(d.path(), FIX)),
            Reason::NotRegular("a directory")
        );
        assert_eq!(
            reason(create(Path::new("/dev/null"), FIX)),
            Reason::NotRegular("a character device")
        );
        let fifo = d.path().join("pipe");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(made.success());
        // Opening a pipe nobody reads would block: the look refuses it first.
        assert_eq!(
            reason(open_read(&fifo, FIX)),
            Reason::NotRegular("a named pipe")
        );
    }

    #[test]
    fn a_refusal_is_one_sentence_naming_what_to_do() {
        let e = Refused {
            reason: Reason::Symlink,
            fix: FIX,
        }
        .into_io();
        let text = e.to_string();
        assert!(text.starts_with("it is a symbolic link"), "{text}");
        assert!(text.ends_with("; give --out another path"), "{text}");
        assert!(std::error::Error::source(&e).is_none(), "nothing to repeat");
    }

    #[test]
    fn fresh_files_are_new_unguessable_and_the_owners_only() {
        let d = tempfile::tempdir().unwrap();
        let near = d.path().join("token");
        let (a, _) = fresh(&near, "tmp", Access::Owner).unwrap();
        let (b, _) = fresh(&near, "tmp", Access::Owner).unwrap();
        assert_ne!(a, b);
        assert_eq!(a.parent(), Some(d.path()));
        let name = a.file_name().unwrap().to_string_lossy().into_owned();
        assert!(
            name.starts_with(".token.") && name.ends_with(".tmp"),
            "{name}"
        );
        let mode = std::fs::metadata(&a).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }

    #[test]
    fn replace_writes_a_new_file_and_refuses_a_link() {
        let d = tempfile::tempdir().unwrap();
        let cache = d.path().join("cache");
        replace(&cache, b"one", Access::Owner, FIX).unwrap();
        replace(&cache, b"two", Access::Owner, FIX).unwrap();
        assert_eq!(std::fs::read(&cache).unwrap(), b"two");
        let mode = std::fs::metadata(&cache).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let target = d.path().join("elsewhere");
        std::fs::write(&target, "keep me").unwrap();
        let link = d.path().join("linked-cache");
        symlink(&target, &link).unwrap();
        assert_eq!(
            reason(replace(&link, b"x", Access::Owner, FIX)),
            Reason::Symlink
        );
        assert_eq!(std::fs::read(&target).unwrap(), b"keep me");
        assert!(std::fs::symlink_metadata(&link).unwrap().is_symlink());
        let left: Vec<_> = std::fs::read_dir(d.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .filter(|n| n.to_string_lossy().ends_with(".tmp"))
            .collect();
        assert!(left.is_empty(), "no temporary file left behind: {left:?}");
    }
}

/// Whether two paths name the same file: one file under two names (a link, a hard link, a bind
/// mount), or, when either is not there yet, the same path.
pub fn same_file(a: &Path, b: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        if let (Ok(x), Ok(y)) = (std::fs::metadata(a), std::fs::metadata(b)) {
            return (x.dev(), x.ino()) == (y.dev(), y.ino());
        }
    }
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(x), Ok(y)) => x == y,
        _ => a == b,
    }
}

/// Overrides where pcbulk keeps its state: the list of runs, the token cache (tests, or a user who
/// wants it elsewhere).
pub const STATE_DIR_ENV: &str = "PCBULK_STATE_DIR";

fn env(name: &str) -> Option<PathBuf> {
    std::env::var_os(name)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

/// pcbulk's state folder, if the environment gives one.
pub fn state_dir() -> Option<PathBuf> {
    if let Some(d) = env(STATE_DIR_ENV) {
        return Some(d);
    }
    // The XDG spec: a relative XDG_STATE_HOME is invalid and ignored.
    if let Some(d) = env("XDG_STATE_HOME").filter(|d| d.is_absolute()) {
        return Some(d.join("pcbulk"));
    }
    if let Some(h) = env("HOME") {
        return Some(h.join(".local").join("state").join("pcbulk"));
    }
    // Windows sets none of the above: its per-user application data folder is the place.
    env("LOCALAPPDATA")
        .filter(|d| d.is_absolute())
        .map(|d| d.join("pcbulk"))
}
