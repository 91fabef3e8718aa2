//! The host's TCP secret: one random key for every tpa process of the
//! host, kept for as long as the host runs, from which the RFC 6528 ISN
//! key and the RFC 7323 timestamp-offset key derive.
//!
//! A process that keyed its ISNs and timestamp offsets afresh would
//! collide with its predecessors: a peer that still holds one of our
//! 4-tuples in TIME_WAIT lets a new SYN in only when its timestamp (or,
//! without timestamps, its sequence number) is above the old
//! connection's (RFC 6191, RFC 9293 §3.4.1), and a fresh key puts it
//! below half the time, so the SYN is dropped and retransmitted a second
//! later. Linux avoids this with secrets that last the boot; so do we:
//!
//! - the secret is [`SECRET_LEN`] random bytes in the file [`FILE_NAME`]
//!   of the run directory (`$TPA_RUN_DIR`, else `/run/tpa`: a tmpfs, so
//!   a reboot forgets it), mode 0600, made once by whichever process
//!   comes first (written to a temporary file and linked into place, so
//!   two processes starting together agree on one);
//! - the clock under both numbers is the host's boot clock
//!   ([`Clock::to_boot_ns`]), not the process's own, so a later process
//!   goes on from where an earlier one stopped.
//!
//! A file that is not a regular file of [`SECRET_LEN`] bytes with mode
//! 0600, owned by root or by us, is an error naming its path: never
//! silently replaced. When [`HostKey::for_this_host`] fails, the apps
//! warn and fall back to [`HostKey::per_process`], a key of the process
//! alone.
//!
//! The per-process seed ([`os_seed`]) still drives the table's other
//! random choices (the ephemeral port order, the maps' hash key).

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::hash::Hasher;
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use siphasher::sip::SipHasher24;
use tpa::time::Clock;

/// The secret file's name in the run directory.
pub const FILE_NAME: &str = "tcp-host.key";

/// The secret's length in bytes.
pub const SECRET_LEN: usize = 32;

/// The only mode the secret file may have: read and write by its owner.
const MODE: u32 = 0o600;

/// The kernel's cryptographic random generator.
const OS_RANDOM: &str = "/dev/urandom";

/// A seed for one process's random choices from the kernel's random
/// generator, or the clock and the process id where it cannot be read.
///
/// ```
/// let a = tpa_stages::tcp::host_key::os_seed();
/// let b = tpa_stages::tcp::host_key::os_seed();
/// assert_ne!(a, b);
/// ```
pub fn os_seed() -> u64 {
    let mut bytes = [0u8; 8];
    match File::open(OS_RANDOM).and_then(|mut f| f.read_exact(&mut bytes)) {
        Ok(()) => u64::from_le_bytes(bytes),
        Err(_) => {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64);
            nanos ^ (u64::from(std::process::id()) << 32)
        }
    }
}

/// The run directory the secret lives in: `$TPA_RUN_DIR`, else
/// `/run/tpa`.
pub fn run_dir() -> PathBuf {
    std::env::var_os("TPA_RUN_DIR").map_or_else(|| PathBuf::from("/run/tpa"), PathBuf::from)
}

/// The keys a [`TcpSockets`](super::TcpSockets) draws its ISNs and
/// timestamp offsets from when it faces a real network (see the module
/// doc), and how far the pipeline's clock is behind the host's boot
/// clock.
///
/// `Debug` does not print the secret.
#[derive(Clone)]
pub struct HostKey {
    secret: [u8; SECRET_LEN],
    boot_offset_ns: u64,
    /// The kernel's id of this boot, mixed into every derived key: the
    /// boot clock restarts at a reboot, so a secret kept across one (a run
    /// directory that is not a tmpfs) must not give the same numbers again.
    boot_id: [u8; BOOT_ID_LEN],
}

/// Where Linux tells the id of the current boot (a UUID, new at each boot).
const BOOT_ID: &str = "/proc/sys/kernel/random/boot_id";
/// Its length in bytes (`xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`).
const BOOT_ID_LEN: usize = 36;

/// This boot's id, or zeros where it cannot be read.
fn boot_id() -> [u8; BOOT_ID_LEN] {
    let mut id = [0; BOOT_ID_LEN];
    if let Ok(text) = std::fs::read(BOOT_ID) {
        let n = text.len().min(BOOT_ID_LEN);
        id[..n].copy_from_slice(&text[..n]);
    }
    id
}

impl HostKey {
    /// A key from `secret`, for a pipeline whose time is
    /// `boot_offset_ns` behind the host's boot clock (0 for a pipeline
    /// that already runs on it, or for tests).
    pub const fn from_secret(secret: [u8; SECRET_LEN], boot_offset_ns: u64) -> Self {
        HostKey {
            secret,
            boot_offset_ns,
            boot_id: [0; BOOT_ID_LEN],
        }
    }

    /// The host's key for a pipeline on the real clock
    /// ([`Clock::global`]): the secret of [`load_or_create`] in
    /// [`run_dir`].
    ///
    /// # Errors
    ///
    /// As [`load_or_create`]. The caller should then warn and go on with
    /// [`per_process`](Self::per_process): new connections may collide
    /// with an earlier process's TIME_WAIT on a peer, nothing worse.
    pub fn for_this_host() -> io::Result<Self> {
        load_or_create(&run_dir()).map(Self::on_real_clock)
    }

    /// A key of this process alone, from the kernel's random generator,
    /// for a pipeline on [`Clock::global`]: the fallback when the host's
    /// secret cannot be had.
    pub fn per_process() -> Self {
        let mut secret = [0; SECRET_LEN];
        for chunk in secret.chunks_mut(8) {
            chunk.copy_from_slice(&os_seed().to_le_bytes());
        }
        Self::on_real_clock(secret)
    }

    /// A key from `secret` for a pipeline on [`Clock::global`], for this
    /// boot (the kernel's boot id goes into every derived key).
    pub fn on_real_clock(secret: [u8; SECRET_LEN]) -> Self {
        HostKey {
            boot_id: boot_id(),
            ..Self::from_secret(secret, Clock::global().to_boot_ns(0))
        }
    }

    /// How far the pipeline's time is behind the host's boot clock: add
    /// it to pipeline time for the clock under ISNs and timestamps.
    pub fn boot_offset_ns(&self) -> u64 {
        self.boot_offset_ns
    }

    /// The 128-bit RFC 6528 ISN key (the timestamp offsets come from the
    /// same hash: `IsnGenerator::isn_and_ts_offset`).
    pub fn isn_key(&self) -> [u8; 16] {
        self.derive(b"tpa tcp isn key")
    }

    /// The 128-bit key of the SYN cookies (its label names timestamps
    /// too, as when it keyed them: kept, so the key stays the same).
    pub fn cookie_key(&self) -> [u8; 16] {
        self.derive(b"tpa tcp ts+cookie")
    }

    /// A 128-bit key for one purpose: SipHash-2-4 of the purpose's label
    /// under each half of the secret, so keys for different purposes are
    /// unrelated.
    fn derive(&self, label: &[u8]) -> [u8; 16] {
        let mut key = [0; 16];
        for (half, out) in self.secret.chunks(16).zip(key.chunks_mut(8)) {
            let mut h = SipHasher24::new_with_key(half.try_into().expect("16-byte half"));
            h.write(label);
            h.write(&self.boot_id);
            out.copy_from_slice(&h.finish().to_le_bytes());
        }
        key
    }
}

impl fmt::Debug for HostKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HostKey")
            .field("secret", &"<secret>")
            .field("boot_offset_ns", &self.boot_offset_ns)
            .finish()
    }
}

/// The secret in `dir`'s [`FILE_NAME`], made (with the directory) when
/// there is none yet. Processes calling this together all get the one
/// secret that reached the file first.
///
/// # Errors
///
/// The directory or the file cannot be made or read, or the file is not
/// a regular file of [`SECRET_LEN`] bytes, mode 0600, owned by root or by
/// this process's user; the message names the path.
pub fn load_or_create(dir: &Path) -> io::Result<[u8; SECRET_LEN]> {
    let path = dir.join(FILE_NAME);
    let named = |e: io::Error| io::Error::new(e.kind(), format!("{}: {e}", path.display()));
    loop {
        match read_secret(&path) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            other => return other.map_err(named),
        }
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(dir)
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", dir.display())))?;
        if let Some(secret) = create_secret(dir, &path).map_err(named)? {
            return Ok(secret);
        }
        // Another process linked its secret first: read that one.
    }
}

/// Reads and checks the secret file.
fn read_secret(path: &Path) -> io::Result<[u8; SECRET_LEN]> {
    let mut file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)?;
    let meta = file.metadata()?;
    let refuse = |why: String| Err(io::Error::new(io::ErrorKind::InvalidData, why));
    if !meta.is_file() {
        return refuse("not a regular file".into());
    }
    let mode = meta.permissions().mode() & 0o7777;
    if mode != MODE {
        return refuse(format!("mode {mode:04o}, not {MODE:04o}"));
    }
    // SAFETY: `geteuid` has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    if meta.uid() != 0 && meta.uid() != me {
        return refuse(format!("owned by uid {}, not root or {me}", meta.uid()));
    }
    if meta.len() != SECRET_LEN as u64 {
        return refuse(format!("{} bytes, not {SECRET_LEN}", meta.len()));
    }
    let mut secret = [0; SECRET_LEN];
    file.read_exact(&mut secret)?;
    Ok(secret)
}

/// Writes a fresh secret to a temporary file in `dir` and links it to
/// `path`: `Some(secret)` when the link made the file, `None` when
/// another process's file was there first (link never replaces).
fn create_secret(dir: &Path, path: &Path) -> io::Result<Option<[u8; SECRET_LEN]>> {
    let mut secret = [0; SECRET_LEN];
    File::open(OS_RANDOM)?.read_exact(&mut secret)?;
    let temp = dir.join(format!(
        ".{FILE_NAME}.{}.{:x}",
        std::process::id(),
        os_seed()
    ));
    let written = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(MODE)
            .open(&temp)?;
        // The umask may have taken bits off the mode; set it whole.
        file.set_permissions(fs::Permissions::from_mode(MODE))?;
        file.write_all(&secret)?;
        file.sync_all()?;
        fs::hard_link(&temp, path)
    })();
    let _ = fs::remove_file(&temp);
    match written {
        Ok(()) => Ok(Some(secret)),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(None),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Barrier};

    /// A scratch directory of this test, removed when dropped.
    struct Scratch(PathBuf);

    impl Scratch {
        fn new(name: &str) -> Self {
            let dir = std::env::temp_dir().join(format!(
                "tpa-host-key-{name}-{}-{:x}",
                std::process::id(),
                os_seed()
            ));
            Scratch(dir)
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn created_once_then_reused() {
        let dir = Scratch::new("reuse");
        let first = load_or_create(&dir.0).expect("create");
        let path = dir.0.join(FILE_NAME);
        let meta = fs::metadata(&path).unwrap();
        assert_eq!(meta.permissions().mode() & 0o7777, 0o600);
        assert_eq!(meta.len(), SECRET_LEN as u64);
        assert_eq!(fs::read(&path).unwrap(), first);
        assert_eq!(load_or_create(&dir.0).expect("reuse"), first);
        assert_ne!(first, [0; SECRET_LEN]);
        // No temporary file is left behind.
        assert_eq!(fs::read_dir(&dir.0).unwrap().count(), 1);
    }

    #[test]
    fn a_wrong_mode_is_refused_with_the_path() {
        let dir = Scratch::new("mode");
        load_or_create(&dir.0).expect("create");
        let path = dir.0.join(FILE_NAME);
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        let err = load_or_create(&dir.0).expect_err("0644 accepted");
        let shown = err.to_string();
        assert!(shown.contains(&path.display().to_string()), "{shown}");
        assert!(shown.contains("0644"), "{shown}");
        // Refused, not replaced.
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o7777,
            0o644
        );
    }

    #[test]
    fn a_wrong_size_is_refused_with_the_path() {
        let dir = Scratch::new("size");
        fs::create_dir_all(&dir.0).unwrap();
        let path = dir.0.join(FILE_NAME);
        fs::write(&path, [7u8; 16]).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        let err = load_or_create(&dir.0).expect_err("16 bytes accepted");
        let shown = err.to_string();
        assert!(shown.contains(&path.display().to_string()), "{shown}");
        assert!(shown.contains("16 bytes"), "{shown}");
        assert_eq!(fs::read(&path).unwrap(), [7u8; 16]);
    }

    #[test]
    fn a_stranger_s_file_is_refused() {
        let dir = Scratch::new("owner");
        load_or_create(&dir.0).expect("create");
        let path = dir.0.join(FILE_NAME);
        // A uid that is neither root nor this process's user (the tests
        // run as root, which may give its file away).
        std::os::unix::fs::chown(&path, Some(54_321), None).expect("chown (as root)");
        let err = load_or_create(&dir.0).expect_err("a stranger's file accepted");
        let shown = err.to_string();
        assert!(shown.contains(&path.display().to_string()), "{shown}");
        assert!(shown.contains("uid 54321"), "{shown}");
    }

    #[test]
    fn a_symlink_or_directory_is_refused() {
        let dir = Scratch::new("link");
        fs::create_dir_all(&dir.0).unwrap();
        let path = dir.0.join(FILE_NAME);
        let target = dir.0.join("elsewhere");
        fs::write(&target, [1u8; SECRET_LEN]).unwrap();
        fs::set_permissions(&target, fs::Permissions::from_mode(0o600)).unwrap();
        std::os::unix::fs::symlink(&target, &path).unwrap();
        let err = load_or_create(&dir.0).expect_err("symlink followed");
        assert!(
            err.to_string().contains(&path.display().to_string()),
            "{err}"
        );
        fs::remove_file(&path).unwrap();
        fs::create_dir(&path).unwrap();
        let err = load_or_create(&dir.0).expect_err("directory accepted");
        assert!(err.to_string().contains("not a regular file"), "{err}");
    }

    #[test]
    fn concurrent_creators_agree() {
        for round in 0..8 {
            let dir = Scratch::new(&format!("race{round}"));
            let start = Arc::new(Barrier::new(6));
            let secrets: Vec<_> = (0..6)
                .map(|_| {
                    let (dir, start) = (dir.0.clone(), start.clone());
                    std::thread::spawn(move || {
                        start.wait();
                        load_or_create(&dir).expect("load or create")
                    })
                })
                .collect::<Vec<_>>()
                .into_iter()
                .map(|t| t.join().unwrap())
                .collect();
            assert!(secrets.iter().all(|s| *s == secrets[0]), "round {round}");
            assert_eq!(fs::read(dir.0.join(FILE_NAME)).unwrap(), secrets[0]);
            assert_eq!(fs::read_dir(&dir.0).unwrap().count(), 1, "round {round}");
        }
    }

    #[test]
    fn derived_keys_differ_by_purpose_and_secret() {
        let a = HostKey::from_secret([1; SECRET_LEN], 0);
        let b = HostKey::from_secret([2; SECRET_LEN], 0);
        assert_ne!(a.isn_key(), a.cookie_key());
        assert_ne!(a.isn_key(), b.isn_key());
        assert_ne!(a.cookie_key(), b.cookie_key());
        assert_eq!(a.isn_key(), a.clone().isn_key());
        let shown = format!("{a:?}");
        assert!(
            shown.contains("<secret>") && !shown.contains("[1"),
            "{shown}"
        );
    }
}
