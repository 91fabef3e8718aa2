//! Builds a [`Script`] from tokens, by recursive descent over the
//! grammar packetdrill's scripts are written in:
//!
//! ```text
//! script  := option* command? event*
//! event   := time action
//! time    := '+'? NUM | '*' | NUM '~' NUM | '+' NUM '~' '+' NUM
//! action  := ('<' | '>') packet | ('...' NUM)? NAME '(' args ')' '=' expr errno? note?
//!          | `command` | %{ code }%
//! packet  := ipinfo? ports? flags NUM ':' NUM '(' NUM ')' ('ack' NUM)? ('win' NUM)?
//!            ('urg' NUM)? ('<' option (',' option)* '>' | '<' '...' '>')?
//! ```

use super::ast::{
    Action, Command, Direction, ErrnoSpec, Event, EventTime, Expr, Flags, PacketSpec, Script,
    ScriptOption, SyscallSpec, TcpOption,
};
use super::error::ParseError;
use super::lexer::{lex, Spanned, Token};

/// Parses a whole script.
///
/// # Errors
///
/// The first syntax or semantic error, with its line.
pub fn parse(text: &str) -> Result<Script, ParseError> {
    let tokens = lex(text)?;
    Parser { tokens, pos: 0 }.script()
}

/// The latest time a script may name: about 31 years, in µs.
pub const MAX_TIME_US: u64 = 1_000_000_000_000_000;

struct Parser {
    tokens: Vec<Spanned>,
    pos: usize,
}

/// Microseconds in `text` seconds (`0.1`, `2`, `.25`), exactly.
fn secs_to_us(text: &str, line: usize) -> Result<u64, ParseError> {
    let (int, frac) = text.split_once('.').unwrap_or((text, ""));
    let int: u64 = if int.is_empty() {
        0
    } else {
        int.parse()
            .map_err(|_| ParseError::new(line, format!("bad time {text}")))?
    };
    let mut frac_us = 0u64;
    for (k, d) in frac.chars().enumerate() {
        let d = d
            .to_digit(10)
            .ok_or_else(|| ParseError::new(line, format!("bad time {text}")))?;
        if k < 6 {
            frac_us += u64::from(d) * 10u64.pow(5 - k as u32);
        }
    }
    int.checked_mul(1_000_000)
        .and_then(|v| v.checked_add(frac_us))
        .ok_or_else(|| ParseError::new(line, format!("time out of range: {text}")))
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos).map(|t| &t.token)
    }

    fn peek_at(&self, k: usize) -> Option<&Token> {
        self.tokens.get(self.pos + k).map(|t| &t.token)
    }

    /// The line of the current token (or the last one at the end).
    fn line(&self) -> usize {
        self.tokens
            .get(self.pos)
            .or_else(|| self.tokens.last())
            .map_or(1, |t| t.line)
    }

    fn next(&mut self) -> Option<Token> {
        let t = self.tokens.get(self.pos).map(|t| t.token.clone());
        if t.is_some() {
            self.pos += 1;
        }
        t
    }

    fn err<T>(&self, message: impl Into<String>) -> Result<T, ParseError> {
        Err(ParseError::new(self.line(), message))
    }

    fn describe(t: Option<&Token>) -> String {
        match t {
            None => "end of script".into(),
            Some(Token::Int(v)) | Some(Token::Hex(v)) => format!("number {v}"),
            Some(Token::Float(s)) | Some(Token::Ipv4(s)) => format!("number {s}"),
            Some(Token::Word(w)) => format!("'{w}'"),
            Some(Token::Str(s)) => format!("string \"{s}\""),
            Some(Token::BackQuoted(_)) => "a `command`".into(),
            Some(Token::Code(_)) => "a %{ code }% block".into(),
            Some(Token::Option(n, _)) => format!("option --{n}"),
            Some(Token::Ellipsis) => "'...'".into(),
            Some(Token::Punct(c)) => format!("'{c}'"),
        }
    }

    fn expect_punct(&mut self, c: char, what: &str) -> Result<(), ParseError> {
        if self.peek() == Some(&Token::Punct(c)) {
            self.pos += 1;
            Ok(())
        } else {
            self.err(format!(
                "expected '{c}' {what}, found {}",
                Self::describe(self.peek())
            ))
        }
    }

    fn eat_punct(&mut self, c: char) -> bool {
        if self.peek() == Some(&Token::Punct(c)) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn eat_word(&mut self, w: &str) -> bool {
        if matches!(self.peek(), Some(Token::Word(x)) if x == w) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn int(&mut self, what: &str) -> Result<i64, ParseError> {
        match self.peek() {
            Some(Token::Int(v)) | Some(Token::Hex(v)) => {
                let v = *v;
                self.pos += 1;
                Ok(v)
            }
            other => self.err(format!(
                "expected {what} (a number), found {}",
                Self::describe(other)
            )),
        }
    }

    fn u32_value(&mut self, what: &str) -> Result<u32, ParseError> {
        let line = self.line();
        let v = self.int(what)?;
        u32::try_from(v).map_err(|_| ParseError::new(line, format!("{what} out of range: {v}")))
    }

    fn u16_value(&mut self, what: &str) -> Result<u16, ParseError> {
        let line = self.line();
        let v = self.int(what)?;
        u16::try_from(v).map_err(|_| ParseError::new(line, format!("{what} out of range: {v}")))
    }

    /// A time in µs: an integer or a decimal number of seconds, at most
    /// [`MAX_TIME_US`] (so sums of times never overflow).
    fn time_value(&mut self) -> Result<u64, ParseError> {
        let line = self.line();
        let t = self.time_value_unbounded()?;
        if t > MAX_TIME_US {
            return Err(ParseError::new(line, format!("time out of range: {t} µs")));
        }
        Ok(t)
    }

    fn time_value_unbounded(&mut self) -> Result<u64, ParseError> {
        let line = self.line();
        match self.next() {
            Some(Token::Int(v)) if v >= 0 => (v as u64)
                .checked_mul(1_000_000)
                .ok_or_else(|| ParseError::new(line, format!("time out of range: {v}"))),
            Some(Token::Float(s)) => secs_to_us(&s, line),
            other => Err(ParseError::new(
                line,
                format!("expected a time, found {}", Self::describe(other.as_ref())),
            )),
        }
    }

    fn starts_time(&self) -> bool {
        matches!(
            self.peek(),
            Some(Token::Int(_)) | Some(Token::Float(_)) | Some(Token::Punct('+' | '*'))
        )
    }

    fn script(mut self) -> Result<Script, ParseError> {
        let mut script = Script::default();
        while let Some(Token::Option(name, value)) = self.peek().cloned() {
            script.options.push(ScriptOption {
                name,
                value,
                line: self.line(),
            });
            self.pos += 1;
        }
        if let Some(Token::BackQuoted(text)) = self.peek().cloned() {
            script.init_command = Some(Command {
                text,
                line: self.line(),
            });
            self.pos += 1;
        }
        while self.peek().is_some() {
            if !self.starts_time() {
                return self.err(format!(
                    "expected an event's time, found {}",
                    Self::describe(self.peek())
                ));
            }
            script.events.push(self.event()?);
        }
        Ok(script)
    }

    fn event(&mut self) -> Result<Event, ParseError> {
        let line = self.line();
        let time = if self.eat_punct('*') {
            EventTime::Any
        } else if self.eat_punct('+') {
            let t = self.time_value()?;
            if self.eat_punct('~') {
                self.expect_punct('+', "after '~' in a relative time range")?;
                let end = self.time_value()?;
                EventTime::RelativeRange(t, end)
            } else {
                EventTime::Relative(t)
            }
        } else {
            let t = self.time_value()?;
            if self.eat_punct('~') {
                EventTime::AbsoluteRange(t, self.time_value()?)
            } else {
                EventTime::Absolute(t)
            }
        };
        if let EventTime::AbsoluteRange(a, b) | EventTime::RelativeRange(a, b) = time {
            if b < a {
                return Err(ParseError::new(line, "time range is backwards"));
            }
        }
        let action = self.action()?;
        let outbound = matches!(
            &action,
            Action::Packet(PacketSpec {
                direction: Direction::Outbound,
                ..
            }) | Action::OtherPacket {
                direction: Direction::Outbound,
                ..
            }
        );
        match time {
            EventTime::Any if !outbound => Err(ParseError::new(
                line,
                "event time * can only be used with outbound packets",
            )),
            EventTime::AbsoluteRange(..) | EventTime::RelativeRange(..) if !outbound => {
                Err(ParseError::new(
                    line,
                    "event time range can only be used with outbound packets",
                ))
            }
            _ => Ok(Event { line, time, action }),
        }
    }

    fn action(&mut self) -> Result<Action, ParseError> {
        let line = self.line();
        match self.peek().cloned() {
            Some(Token::Punct('<')) => {
                self.pos += 1;
                self.packet(Direction::Inbound)
            }
            Some(Token::Punct('>')) => {
                self.pos += 1;
                self.packet(Direction::Outbound)
            }
            Some(Token::BackQuoted(text)) => {
                self.pos += 1;
                Ok(Action::Command(Command { text, line }))
            }
            Some(Token::Code(text)) => {
                self.pos += 1;
                Ok(Action::Code(text))
            }
            Some(Token::Ellipsis) | Some(Token::Word(_)) => self.syscall(),
            other => self.err(format!(
                "expected a packet, a call or a command, found {}",
                Self::describe(other.as_ref())
            )),
        }
    }

    /// `[ect0]`, `(tos 0x10)`, `[noecn]`: kept as text.
    fn ip_info(&mut self) -> Option<String> {
        let close = match self.peek() {
            Some(Token::Punct('[')) => ']',
            Some(Token::Punct('(')) => ')',
            _ => return None,
        };
        let mut text = String::new();
        self.pos += 1;
        while let Some(t) = self.next() {
            if t == Token::Punct(close) {
                break;
            }
            text.push_str(&Self::describe(Some(&t)));
            text.push(' ');
        }
        Some(text.trim().replace('\'', ""))
    }

    fn packet(&mut self, direction: Direction) -> Result<Action, ParseError> {
        let mut ip_info = self.ip_info();
        // Encapsulation prefixes and other protocols.
        loop {
            match self.peek().cloned() {
                Some(Token::Word(w)) if w == "udp" || w == "icmp" => {
                    // Skip the rest of the line's tokens up to the next event.
                    let line = self.line();
                    self.pos += 1;
                    while self.peek().is_some() && self.line() == line {
                        self.pos += 1;
                    }
                    return Ok(Action::OtherPacket {
                        protocol: w,
                        direction,
                    });
                }
                Some(Token::Word(w)) if ["ipv4", "ipv6", "gre", "mpls"].contains(&w.as_str()) => {
                    // `ipv4 A > B:` headers: named as unsupported.
                    let line = self.line();
                    let mut text = w.clone();
                    self.pos += 1;
                    while self.line() == line && !self.eat_punct(':') {
                        if self.next().is_none() {
                            break;
                        }
                    }
                    // The ':' that ends the prefix may be followed by more.
                    text.push_str(" encapsulation header");
                    ip_info = Some(text);
                    if ip_info.is_some() {
                        if let Some(more) = self.ip_info() {
                            ip_info = Some(format!("{} {more}", ip_info.unwrap_or_default()));
                        }
                    }
                }
                _ => break,
            }
        }
        let mut ports = None;
        if let (Some(Token::Int(a)), Some(Token::Punct('>')), Some(Token::Int(b))) =
            (self.peek(), self.peek_at(1), self.peek_at(2))
        {
            let (a, b) = (*a, *b);
            let line = self.line();
            let (Ok(a), Ok(b)) = (u16::try_from(a), u16::try_from(b)) else {
                return Err(ParseError::new(line, "port out of range"));
            };
            ports = Some((a, b));
            self.pos += 3;
        }
        let flags = self.flags()?;
        let seq_line = self.line();
        let seq = self.u32_value("TCP start sequence number")?;
        self.expect_punct(':', "in seq:end(len)")?;
        let end = self.u32_value("TCP end sequence number")?;
        self.expect_punct('(', "in seq:end(len)")?;
        let len = self.u16_value("TCP payload size")?;
        self.expect_punct(')', "in seq:end(len)")?;
        if u64::from(end) != u64::from(seq) + u64::from(len) {
            return Err(ParseError::new(
                seq_line,
                "inconsistent TCP sequence numbers and payload size",
            ));
        }
        let mut spec = PacketSpec {
            direction,
            ip_info,
            ports,
            flags,
            seq,
            len,
            ack: None,
            win: None,
            urg: None,
            options: Some(Vec::new()),
        };
        if self.eat_word("ack") {
            spec.ack = Some(self.u32_value("TCP ack sequence number")?);
        }
        if self.eat_word("win") {
            spec.win = Some(self.u16_value("TCP window value")?);
        }
        if self.eat_word("urg") {
            spec.urg = Some(self.u16_value("urg_ptr value")?);
        }
        if self.eat_punct('<') {
            if self.peek() == Some(&Token::Ellipsis) {
                self.pos += 1;
                if direction == Direction::Inbound {
                    return self
                        .err("<...> for TCP options can only be used with outbound packets");
                }
                spec.options = None;
            } else {
                let mut opts = vec![self.tcp_option()?];
                while self.eat_punct(',') {
                    opts.push(self.tcp_option()?);
                }
                spec.options = Some(opts);
            }
            self.expect_punct('>', "to end the TCP options")?;
        }
        if self.peek() == Some(&Token::Punct('{')) {
            return self.err("fuzz options {...} are not supported");
        }
        Ok(Action::Packet(spec))
    }

    fn flags(&mut self) -> Result<Flags, ParseError> {
        let mut f = Flags::default();
        match self.peek().cloned() {
            Some(Token::Punct('.')) => {
                self.pos += 1;
                f.ack = true;
            }
            Some(Token::Punct('-')) => {
                self.pos += 1;
            }
            Some(Token::Word(w)) => {
                self.pos += 1;
                for c in w.chars() {
                    let bit = match c {
                        'F' => &mut f.fin,
                        'S' => &mut f.syn,
                        'R' => &mut f.rst,
                        'P' => &mut f.psh,
                        'U' => &mut f.urg,
                        'E' => &mut f.ece,
                        'W' => &mut f.cwr,
                        _ => return self.err(format!("unknown TCP flag '{c}' in '{w}'")),
                    };
                    *bit = true;
                }
                if self.eat_punct('.') {
                    f.ack = true;
                }
            }
            other => {
                return self.err(format!(
                    "expected TCP flags, found {}",
                    Self::describe(other.as_ref())
                ))
            }
        }
        Ok(f)
    }

    fn tcp_option(&mut self) -> Result<TcpOption, ParseError> {
        let line = self.line();
        let Some(Token::Word(w)) = self.next() else {
            return Err(ParseError::new(line, "expected a TCP option"));
        };
        Ok(match w.as_str() {
            "nop" => TcpOption::Nop,
            "eol" => TcpOption::Eol,
            "mss" => TcpOption::Mss(self.u16_value("mss value")?),
            "wscale" => {
                let v = self.int("window scale shift count")?;
                TcpOption::WindowScale(
                    u8::try_from(v).map_err(|_| {
                        ParseError::new(line, "window scale shift count out of range")
                    })?,
                )
            }
            "sackOK" => TcpOption::SackPermitted,
            "sack" => {
                let mut blocks = Vec::new();
                while matches!(self.peek(), Some(Token::Int(_))) {
                    let a = self.u32_value("TCP SACK left sequence number")?;
                    self.expect_punct(':', "in a SACK block")?;
                    let b = self.u32_value("TCP SACK right sequence number")?;
                    blocks.push((a, b));
                }
                if blocks.is_empty() {
                    return Err(ParseError::new(line, "sack without blocks"));
                }
                TcpOption::Sack(blocks)
            }
            "TS" => {
                if !self.eat_word("val") {
                    return self.err("expected 'val' after TS");
                }
                let val = self.u32_value("ts val")?;
                if !self.eat_word("ecr") {
                    return self.err("expected 'ecr' after TS val");
                }
                let ecr = self.u32_value("ecr val")?;
                TcpOption::Timestamp { val, ecr }
            }
            "FO" | "FOEXP" | "md5" => {
                let blob = match self.peek().cloned() {
                    Some(Token::Word(b)) => {
                        self.pos += 1;
                        b
                    }
                    Some(Token::Int(v)) => {
                        self.pos += 1;
                        v.to_string()
                    }
                    _ => String::new(),
                };
                if w == "md5" {
                    TcpOption::Md5(blob)
                } else {
                    TcpOption::FastOpen(blob)
                }
            }
            other => {
                return Err(ParseError::new(
                    line,
                    format!("unknown TCP option '{other}'"),
                ))
            }
        })
    }

    fn syscall(&mut self) -> Result<Action, ParseError> {
        let end_time = if self.peek() == Some(&Token::Ellipsis) {
            self.pos += 1;
            Some(self.time_value()?)
        } else {
            None
        };
        let line = self.line();
        let Some(Token::Word(name)) = self.next() else {
            return Err(ParseError::new(line, "expected a system call's name"));
        };
        self.expect_punct('(', "after the call's name")?;
        let mut args = Vec::new();
        if !self.eat_punct(')') {
            args.push(self.expr()?);
            while self.eat_punct(',') {
                args.push(self.expr()?);
            }
            self.expect_punct(')', "to end the call's arguments")?;
        }
        self.expect_punct('=', "before the call's expected result")?;
        let result = self.expr()?;
        let mut errno = None;
        if let Some(Token::Word(e)) = self.peek().cloned() {
            self.pos += 1;
            let note = if self.peek() == Some(&Token::Punct('(')) {
                self.note()?
            } else {
                String::new()
            };
            errno = Some(ErrnoSpec { name: e, note });
        }
        let note = if self.peek() == Some(&Token::Punct('(')) {
            Some(self.note()?)
        } else {
            None
        };
        Ok(Action::Syscall(SyscallSpec {
            end_time,
            name,
            args,
            result,
            errno,
            note,
        }))
    }

    /// `( words )`: the text between the parentheses.
    fn note(&mut self) -> Result<String, ParseError> {
        let line = self.line();
        self.expect_punct('(', "")?;
        let mut words = Vec::new();
        let mut depth = 1;
        loop {
            match self.next() {
                None => return Err(ParseError::new(line, "unterminated (note)")),
                Some(Token::Punct('(')) => depth += 1,
                Some(Token::Punct(')')) => {
                    depth -= 1;
                    if depth == 0 {
                        break;
                    }
                }
                Some(Token::Word(w)) => words.push(w),
                Some(Token::Int(v)) => words.push(v.to_string()),
                Some(_) => {}
            }
        }
        Ok(words.join(" "))
    }

    fn expr(&mut self) -> Result<Expr, ParseError> {
        let mut e = self.primary()?;
        while self.eat_punct('|') {
            let rhs = self.primary()?;
            e = Expr::Or(Box::new(e), Box::new(rhs));
        }
        Ok(e)
    }

    fn list(&mut self, close: char) -> Result<Vec<Expr>, ParseError> {
        let mut items = Vec::new();
        if self.eat_punct(close) {
            return Ok(items);
        }
        items.push(self.expr()?);
        while self.eat_punct(',') {
            items.push(self.expr()?);
        }
        self.expect_punct(close, "to end the list")?;
        Ok(items)
    }

    fn primary(&mut self) -> Result<Expr, ParseError> {
        let line = self.line();
        match self.next() {
            Some(Token::Ellipsis) => Ok(Expr::Ellipsis),
            Some(Token::Int(v)) | Some(Token::Hex(v)) => Ok(Expr::Int(v)),
            Some(Token::Punct('-')) => match self.next() {
                Some(Token::Int(v)) | Some(Token::Hex(v)) => Ok(Expr::Int(-v)),
                _ => Err(ParseError::new(line, "expected a number after '-'")),
            },
            Some(Token::Str(mut s)) => {
                while let Some(Token::Str(more)) = self.peek().cloned() {
                    s.push_str(&more);
                    self.pos += 1;
                }
                if self.peek() == Some(&Token::Ellipsis) {
                    self.pos += 1;
                }
                Ok(Expr::Str(s))
            }
            Some(Token::Word(w)) => {
                if self.eat_punct('=') {
                    return Ok(Expr::Field(w, Box::new(self.expr()?)));
                }
                if self.eat_punct('(') {
                    return Ok(Expr::Call(w, self.list(')')?));
                }
                Ok(Expr::Word(w))
            }
            Some(Token::Punct('[')) => Ok(Expr::List(self.list(']')?)),
            Some(Token::Punct('{')) => Ok(Expr::Struct(self.list('}')?)),
            other => Err(ParseError::new(
                line,
                format!(
                    "expected an expression, found {}",
                    Self::describe(other.as_ref())
                ),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(text: &str) -> Event {
        let s = parse(text).unwrap();
        assert_eq!(s.events.len(), 1, "{s:?}");
        s.events.into_iter().next().unwrap()
    }

    fn packet(text: &str) -> PacketSpec {
        match one(text).action {
            Action::Packet(p) => p,
            other => panic!("not a packet: {other:?}"),
        }
    }

    #[test]
    fn times() {
        assert_eq!(one("0 close(3) = 0").time, EventTime::Absolute(0));
        assert_eq!(one("+0.1 close(3) = 0").time, EventTime::Relative(100_000));
        assert_eq!(one("+.25 close(3) = 0").time, EventTime::Relative(250_000));
        assert_eq!(
            one("1.000001 close(3) = 0").time,
            EventTime::Absolute(1_000_001)
        );
        assert_eq!(one("* > . 1:1(0) ack 1").time, EventTime::Any);
        assert_eq!(
            one("0.1~0.2 > . 1:1(0) ack 1").time,
            EventTime::AbsoluteRange(100_000, 200_000)
        );
        assert_eq!(
            one("+0.1~+0.3 > . 1:1(0) ack 1").time,
            EventTime::RelativeRange(100_000, 300_000)
        );
    }

    #[test]
    fn segments() {
        let p = packet("+0 < S 0:0(0) win 32792 <mss 1000,sackOK,nop,nop,nop,wscale 7>");
        assert_eq!(p.direction, Direction::Inbound);
        assert!(p.flags.syn && !p.flags.ack);
        assert_eq!((p.seq, p.len, p.ack, p.win), (0, 0, None, Some(32792)));
        assert_eq!(
            p.options,
            Some(vec![
                TcpOption::Mss(1000),
                TcpOption::SackPermitted,
                TcpOption::Nop,
                TcpOption::Nop,
                TcpOption::Nop,
                TcpOption::WindowScale(7),
            ])
        );
        let p = packet("+0 > P. 1:1001(1000) ack 1 <nop,nop,TS val 100 ecr 7,sack 1:2 3:4,eol>");
        assert_eq!(p.direction, Direction::Outbound);
        assert!(p.flags.psh && p.flags.ack && !p.flags.syn);
        assert_eq!((p.seq, p.len, p.ack), (1, 1000, Some(1)));
        let opts = p.options.unwrap();
        assert_eq!(opts[2], TcpOption::Timestamp { val: 100, ecr: 7 });
        assert_eq!(opts[3], TcpOption::Sack(vec![(1, 2), (3, 4)]));
        assert_eq!(opts[4], TcpOption::Eol);
        let p = packet("0 > F. 1:1(0) ack 1 <...>");
        assert!(p.flags.fin && p.flags.ack);
        assert_eq!(p.options, None);
        let p = packet("0 < R 1:1(0) win 0");
        assert!(p.flags.rst && !p.flags.ack);
        let p = packet("0 < - 1:1(0) win 0");
        assert_eq!(p.flags, Flags::default());
        let p = packet("0 > SEW 0:0(0) <mss 1460>");
        assert!(p.flags.syn && p.flags.ece && p.flags.cwr);
        let p = packet("0 < [ect0] . 1:1(0) ack 1 win 10");
        assert_eq!(p.ip_info.as_deref(), Some("ect0"));
        let p = packet("0 < 4000>8080 S 0:0(0) win 10");
        assert_eq!(p.ports, Some((4000, 8080)));
    }

    #[test]
    fn calls() {
        let e = one("+0 setsockopt(3, SOL_SOCKET, SO_REUSEADDR, [1], 4) = 0");
        let Action::Syscall(c) = e.action else {
            panic!()
        };
        assert_eq!(c.name, "setsockopt");
        assert_eq!(c.args[3], Expr::List(vec![Expr::Int(1)]));
        assert_eq!(c.result, Expr::Int(0));
        let e = one("+0 read(4, ..., 10) = -1 EAGAIN (Resource temporarily unavailable)");
        let Action::Syscall(c) = e.action else {
            panic!()
        };
        assert_eq!(c.args[1], Expr::Ellipsis);
        assert_eq!(c.result, Expr::Int(-1));
        assert_eq!(
            c.errno,
            Some(ErrnoSpec {
                name: "EAGAIN".into(),
                note: "Resource temporarily unavailable".into()
            })
        );
        let e = one("+0...0.5 accept(3, ..., ...) = 4");
        let Action::Syscall(c) = e.action else {
            panic!()
        };
        assert_eq!(c.end_time, Some(500_000));
        let e = one("0 socket(..., SOCK_STREAM|SOCK_NONBLOCK, IPPROTO_TCP) = 3\n");
        let Action::Syscall(c) = e.action else {
            panic!()
        };
        assert_eq!(
            c.args[1],
            Expr::Or(
                Box::new(Expr::Word("SOCK_STREAM".into())),
                Box::new(Expr::Word("SOCK_NONBLOCK".into()))
            )
        );
        let e = one("0 connect(3, {sa_family=AF_INET, sin_port=htons(8080), sin_addr=inet_addr(\"192.0.2.1\")}, 16) = -1 EINPROGRESS (Operation now in progress)");
        let Action::Syscall(c) = e.action else {
            panic!()
        };
        let Expr::Struct(fields) = &c.args[1] else {
            panic!()
        };
        assert_eq!(
            fields[1],
            Expr::Field(
                "sin_port".into(),
                Box::new(Expr::Call("htons".into(), vec![Expr::Int(8080)]))
            )
        );
        let e = one("0 poll([{fd=4, events=POLLIN, revents=POLLIN}], 1, 0) = 1");
        assert!(matches!(e.action, Action::Syscall(_)));
    }

    #[test]
    fn options_commands_code() {
        let s = parse(
            "--ip_version=ipv6\n--tolerance_usecs=10000\n`init`\n0 `sysctl -q net.ipv4.tcp_sack=0`\n+0 %{ print 1 }%\n",
        )
        .unwrap();
        assert_eq!(s.options.len(), 2);
        assert_eq!(s.options[0].name, "ip_version");
        assert_eq!(s.options[1].value.as_deref(), Some("10000"));
        assert_eq!(s.init_command.as_ref().unwrap().text, "init");
        assert_eq!(s.events.len(), 2);
        assert!(matches!(&s.events[0].action, Action::Command(c) if c.line == 4));
        assert!(matches!(&s.events[1].action, Action::Code(_)));
    }

    #[test]
    fn lines_are_tracked() {
        let s = parse("0 close(3) = 0\n\n// gap\n+0 > . 1:1(0) ack 1\n").unwrap();
        assert_eq!(s.events[1].line, 4);
    }

    #[test]
    fn errors_carry_their_line() {
        let cases = [
            ("0 close(3) = 0\n+0 > . 1:2(0) ack 1", 2, "inconsistent"),
            ("0 close(3) = 0\n\n+0 > Q 1:1(0)", 3, "unknown TCP flag"),
            ("0 > . 1:1(0) <mss 1,bogus 2>", 1, "unknown TCP option"),
            (
                "0 close(3) = 0\n+0 < . 1:1(0) <...>",
                2,
                "only be used with outbound",
            ),
            (
                "0 close(3) = 0\n* close(3) = 0",
                2,
                "only be used with outbound",
            ),
            ("0 close(3) = 0\n0.2~0.1 > . 1:1(0)", 2, "backwards"),
            ("0 close(3) 0", 1, "expected '='"),
            (
                "0 close(3) = 0\nclose(3) = 0",
                2,
                "expected an event's time",
            ),
            ("0 > . 1:1(0) win 70000", 1, "out of range"),
            ("0 > . 1:1(0) ack", 1, "ack sequence number"),
            (
                "0 close(3) = 0\n99999999999999999 close(3) = 0",
                2,
                "time out of range",
            ),
            (
                "0 close(3) = 0\n+0...9999999999.5 close(3) = 0",
                2,
                "time out of range",
            ),
        ];
        for (text, line, what) in cases {
            let e = parse(text).unwrap_err();
            assert_eq!(e.line, line, "{text}: {e}");
            assert!(e.message.contains(what), "{text}: {e}");
        }
    }
}
