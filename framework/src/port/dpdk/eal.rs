//! The DPDK Environment Abstraction Layer: initialised once per process.

use std::ffi::{c_char, CStr, CString};
use std::marker::PhantomData;
use std::sync::{Mutex, OnceLock};

use dpdk_sys as sys;

use crate::port::PortError;

/// The initialised EAL. DPDK allows one initialisation per process, so there
/// is at most one value of this type, obtained from [`Eal::init`].
///
/// ```no_run
/// use tpa::port::dpdk::Eal;
/// let eal = Eal::init(&["-l", "0", "--no-huge", "--no-pci", "--file-prefix", "demo"])?;
/// assert_eq!(eal.args()[0], "-l");
/// # Ok::<(), tpa::port::PortError>(())
/// ```
#[derive(Debug)]
pub struct Eal {
    args: Vec<String>,
}

/// The outcome of the one initialisation: the EAL, or why it failed (kept so
/// that later callers get the same error instead of a second attempt).
static EAL: OnceLock<Result<Eal, (i32, String)>> = OnceLock::new();

/// Serialises [`Eal::init`] so the arguments compared are those that won.
static INIT: Mutex<()> = Mutex::new(());

impl Eal {
    /// Initialises the EAL with `args` (without a program name: `argv[0]` is
    /// supplied), or returns the EAL already initialised with the same
    /// arguments. A second call with different arguments is an error, as is
    /// any call after a failed initialisation: DPDK cannot be re-initialised.
    pub fn init<S: AsRef<str>>(args: &[S]) -> Result<&'static Eal, PortError> {
        let args: Vec<String> = args.iter().map(|a| a.as_ref().to_owned()).collect();
        let _serial = INIT.lock().unwrap_or_else(|p| p.into_inner());
        let outcome = EAL.get_or_init(|| init_once(&args));
        match outcome {
            Ok(eal) if eal.args == args => Ok(eal),
            Ok(eal) => Err(PortError::InvalidConfig {
                name: "eal".into(),
                what: format!(
                    "DPDK EAL already initialised with {:?}; it cannot be initialised again with {:?}",
                    eal.args, args
                ),
            }),
            Err((code, message)) => Err(PortError::Dpdk {
                name: "eal".into(),
                op: "rte_eal_init",
                code: *code,
                message: message.clone(),
            }),
        }
    }

    /// The EAL, if [`Eal::init`] succeeded in this process.
    pub fn get() -> Option<&'static Eal> {
        EAL.get().and_then(|r| r.as_ref().ok())
    }

    /// The arguments the EAL was initialised with.
    pub fn args(&self) -> &[String] {
        &self.args
    }

    /// Whether IO addresses are virtual addresses (true with `--no-huge`,
    /// VFIO, and bifurcated drivers such as mlx5).
    pub fn iova_is_va(&self) -> bool {
        // SAFETY: the EAL is initialised (self exists); the call reads config.
        unsafe { sys::rte_eal_iova_mode() == sys::RTE_IOVA_VA }
    }

    /// Makes the calling thread known to DPDK, as a worker thread should
    /// be: a thread DPDK did not start has no lcore id, so mempools skip
    /// their per-lcore cache for it (every allocation and free then goes to
    /// the shared ring). On such a thread this registers it
    /// (`rte_thread_register`) and the returned guard unregisters it when
    /// dropped; on a thread that already has an lcore id (the one that
    /// initialised the EAL, or one registered before) it changes nothing.
    ///
    /// Fails when DPDK has no lcore id left (`RTE_MAX_LCORE`) or the process
    /// uses DPDK multi-process (secondary processes), which rules it out.
    ///
    /// ```no_run
    /// use tpa::port::dpdk::Eal;
    /// let eal = Eal::init(&["-l", "0", "--no-huge", "--no-pci", "--file-prefix", "doc"])?;
    /// std::thread::spawn(move || {
    ///     let lcore = eal.register_thread()?;
    ///     println!("worker runs as lcore {}", lcore.lcore_id());
    ///     // ... poll a DpdkPort here ...
    ///     Ok::<(), tpa::port::PortError>(())
    /// })
    /// .join()
    /// .unwrap()?;
    /// # Ok::<(), tpa::port::PortError>(())
    /// ```
    pub fn register_thread(&self) -> Result<EalThread, PortError> {
        if let Some(lcore) = current_lcore() {
            return Ok(EalThread {
                lcore,
                registered: false,
                _per_thread: PhantomData,
            });
        }
        // SAFETY: the EAL is initialised (self exists); the call only sets
        // up the calling thread's per-lcore state.
        if unsafe { sys::rte_thread_register() } != 0 {
            return Err(dpdk_error("eal", "rte_thread_register", errno()));
        }
        let lcore = current_lcore()
            .ok_or_else(|| dpdk_error("eal", "rte_thread_register", libc::ENOENT))?;
        tracing::debug!(lcore, "registered the thread with the DPDK EAL");
        Ok(EalThread {
            lcore,
            registered: true,
            _per_thread: PhantomData,
        })
    }

    /// The NUMA socket of the calling thread (0 on non-NUMA machines and on
    /// threads DPDK does not manage).
    pub fn socket_id(&self) -> u32 {
        // SAFETY: the EAL is initialised; the call reads a per-thread value.
        let id = unsafe { sys::rte_socket_id() };
        if id == u32::MAX {
            0
        } else {
            id
        }
    }
}

/// The calling thread's lcore id, if it has one (`LCORE_ID_ANY` otherwise).
fn current_lcore() -> Option<u32> {
    // SAFETY: reads a thread-local integer.
    let id = unsafe { sys::tpa_rte_lcore_id() };
    (id < sys::RTE_MAX_LCORE).then_some(id)
}

/// The calling thread's standing with the EAL, from
/// [`Eal::register_thread`]: it has an lcore id while this lives. Tied to
/// its thread (neither `Send` nor `Sync`); if it registered the thread, it
/// unregisters it on drop.
#[derive(Debug)]
pub struct EalThread {
    lcore: u32,
    registered: bool,
    _per_thread: PhantomData<*const ()>,
}

impl EalThread {
    /// The thread's lcore id.
    pub fn lcore_id(&self) -> u32 {
        self.lcore
    }

    /// Whether this guard registered the thread (false: DPDK already knew
    /// it, e.g. the thread that initialised the EAL).
    pub fn registered(&self) -> bool {
        self.registered
    }
}

impl Drop for EalThread {
    fn drop(&mut self) {
        if self.registered {
            // SAFETY: the guard is !Send, so this is the thread it
            // registered; it gives its lcore id back.
            unsafe { sys::rte_thread_unregister() };
        }
    }
}

/// Runs `rte_eal_init`. The argument strings are leaked: DPDK may keep
/// pointers into `argv` for the life of the process.
fn init_once(args: &[String]) -> Result<Eal, (i32, String)> {
    let mut argv: Vec<*mut c_char> = Vec::with_capacity(args.len() + 2);
    for a in std::iter::once("tpa").chain(args.iter().map(String::as_str)) {
        let c =
            CString::new(a).map_err(|_| (libc::EINVAL, format!("argument {a:?} contains NUL")))?;
        argv.push(c.into_raw());
    }
    argv.push(std::ptr::null_mut());
    let argc = (argv.len() - 1) as i32;
    let argv = argv.leak();
    // SAFETY: argv is a NULL-terminated array of argc valid, leaked C strings;
    // the OnceLock guarantees a single call per process.
    let rc = unsafe { sys::rte_eal_init(argc, argv.as_mut_ptr()) };
    if rc < 0 {
        let code = errno();
        return Err((code, strerror(code)));
    }
    tracing::info!(?args, "DPDK EAL initialised");
    Ok(Eal {
        args: args.to_vec(),
    })
}

/// DPDK's per-thread error number (`rte_errno`).
pub(crate) fn errno() -> i32 {
    // SAFETY: reads a thread-local integer.
    unsafe { sys::tpa_rte_errno() }
}

/// DPDK's description of an error number (covers its own codes too).
pub(crate) fn strerror(code: i32) -> String {
    // SAFETY: rte_strerror returns a pointer to a NUL-terminated string in a
    // static or thread-local buffer; it is copied out at once.
    unsafe { CStr::from_ptr(sys::rte_strerror(code.abs())) }
        .to_string_lossy()
        .into_owned()
}

/// A [`PortError::Dpdk`] for `op` on `name` failing with `code` (a negative
/// return value or `rte_errno`, either sign).
pub(crate) fn dpdk_error(name: &str, op: &'static str, code: i32) -> PortError {
    let code = code.abs();
    PortError::Dpdk {
        name: name.to_owned(),
        op,
        code,
        message: strerror(code),
    }
}
