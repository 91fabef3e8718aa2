//! The syntax tree of a packetdrill-format script: options, then events,
//! each a time and an action (a segment in or out, a socket call, a shell
//! command, a code block). Values are kept as written (relative sequence
//! numbers, symbolic constants): the runner gives them meaning.

/// A whole script.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Script {
    /// `--name=value` lines before the first event.
    pub options: Vec<ScriptOption>,
    /// A backquoted command before the first event (packetdrill's init
    /// command).
    pub init_command: Option<Command>,
    /// The events, in script order.
    pub events: Vec<Event>,
}

/// A `--name[=value]` option line.
#[derive(Debug, Clone, PartialEq)]
pub struct ScriptOption {
    /// The name without the leading dashes (`ip_version`).
    pub name: String,
    /// The value, if any (`ipv4`).
    pub value: Option<String>,
    /// The script line.
    pub line: usize,
}

/// One line of the timeline.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// The script line the event starts on (its time's line).
    pub line: usize,
    /// When it happens.
    pub time: EventTime,
    /// What happens.
    pub action: Action,
}

/// When an event happens, in microseconds as written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventTime {
    /// `0.100`: since the script's start.
    Absolute(u64),
    /// `+0.100`: since the previous event completed.
    Relative(u64),
    /// `*`: any time (outbound segments only).
    Any,
    /// `0.100~0.200`: within a window since the start (outbound only).
    AbsoluteRange(u64, u64),
    /// `+0.1~+0.2`: within a window since the previous event (outbound
    /// only).
    RelativeRange(u64, u64),
}

/// What an event does.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// A TCP segment the runner sends (`<`) or expects (`>`).
    Packet(PacketSpec),
    /// A socket call and its expected result.
    Syscall(SyscallSpec),
    /// A backquoted shell command.
    Command(Command),
    /// A `%{ ... }%` Python block (never supported).
    Code(String),
    /// A segment of another protocol (`udp`, `icmp`): parsed so a script
    /// can be named unsupported rather than malformed.
    OtherPacket {
        /// Which protocol (`udp`, `icmp`).
        protocol: String,
        /// The segment's direction.
        direction: Direction,
    },
}

/// Which way a segment goes, seen from the stack under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// `<`: the runner sends it to the stack.
    Inbound,
    /// `>`: the stack must send it.
    Outbound,
}

/// The TCP flags of a segment as written: `S.`, `P.`, `F.`, `R`, `.`, `-`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Flags {
    /// `F`.
    pub fin: bool,
    /// `S`.
    pub syn: bool,
    /// `R`.
    pub rst: bool,
    /// `P`.
    pub psh: bool,
    /// `.`.
    pub ack: bool,
    /// `U`.
    pub urg: bool,
    /// `E` (ECN-Echo).
    pub ece: bool,
    /// `W` (CWR).
    pub cwr: bool,
}

/// A TCP option as written between `<` and `>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TcpOption {
    /// `nop`.
    Nop,
    /// `eol`.
    Eol,
    /// `mss N`.
    Mss(u16),
    /// `wscale N`.
    WindowScale(u8),
    /// `sackOK`.
    SackPermitted,
    /// `sack A:B C:D ...`.
    Sack(Vec<(u32, u32)>),
    /// `TS val N ecr M`.
    Timestamp {
        /// TSval.
        val: u32,
        /// TSecr.
        ecr: u32,
    },
    /// `FO [cookie]` / `FOEXP [cookie]` (TCP Fast Open; unsupported).
    FastOpen(String),
    /// `md5 ...` (unsupported).
    Md5(String),
}

/// A TCP segment line.
#[derive(Debug, Clone, PartialEq)]
pub struct PacketSpec {
    /// `<` or `>`.
    pub direction: Direction,
    /// Anything in the IP part the runner does not model (`[ect0]`,
    /// `(tos 0x..)`, explicit `ipv4 A > B:` headers, `flowlabel`): named
    /// so the script is reported unsupported.
    pub ip_info: Option<String>,
    /// `src>dst` ports, when written.
    pub ports: Option<(u16, u16)>,
    /// The flags.
    pub flags: Flags,
    /// The first sequence number, as written (relative for `>`).
    pub seq: u32,
    /// The payload length (`(N)`).
    pub len: u16,
    /// `ack N` (as written; relative for `<`).
    pub ack: Option<u32>,
    /// `win N`.
    pub win: Option<u16>,
    /// `urg N`.
    pub urg: Option<u16>,
    /// The options; `None` for `<...>` (not checked).
    pub options: Option<Vec<TcpOption>>,
}

/// A socket call line: `name(args) = result [ERRNO (note)]`.
#[derive(Debug, Clone, PartialEq)]
pub struct SyscallSpec {
    /// `...T`: the call blocks until `T` (as written, µs; relative when
    /// the event's time is).
    pub end_time: Option<u64>,
    /// The call's name (`accept`).
    pub name: String,
    /// Its arguments.
    pub args: Vec<Expr>,
    /// The expected return value.
    pub result: Expr,
    /// The expected errno, when the result is -1.
    pub errno: Option<ErrnoSpec>,
    /// A trailing `(note)` without an errno.
    pub note: Option<String>,
}

/// `EAGAIN (Resource temporarily unavailable)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrnoSpec {
    /// The errno's name.
    pub name: String,
    /// The text in parentheses.
    pub note: String,
}

/// An argument or result expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// `...`: the runner fills it in.
    Ellipsis,
    /// A number (decimal or `0x`).
    Int(i64),
    /// A symbol (`SOCK_STREAM`).
    Word(String),
    /// A quoted string.
    Str(String),
    /// `a | b`.
    Or(Box<Expr>, Box<Expr>),
    /// `name = value` (a struct field).
    Field(String, Box<Expr>),
    /// `[a, b]`.
    List(Vec<Expr>),
    /// `{a, b}` (sockaddr, pollfd, linger, iovec...).
    Struct(Vec<Expr>),
    /// `htons(8080)`, `inet_addr("1.2.3.4")`.
    Call(String, Vec<Expr>),
}

/// A backquoted command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    /// The text between the backquotes.
    pub text: String,
    /// Its line.
    pub line: usize,
}
