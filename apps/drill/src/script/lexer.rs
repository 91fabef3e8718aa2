//! Splits a script into tokens, each with its line. Comments (`//` to the
//! end of the line, `/* ... */`) and white space separate tokens and are
//! dropped; the language has no line tokens (an event ends where the
//! next one's time begins).

use super::error::ParseError;

/// One token.
#[derive(Debug, Clone, PartialEq)]
pub enum Token {
    /// `123`.
    Int(i64),
    /// `0x1f`.
    Hex(i64),
    /// `0.100`, `.1`: the text as written (times are parsed exactly from
    /// it, not through a float).
    Float(String),
    /// `192.0.2.1`.
    Ipv4(String),
    /// A name: `accept`, `SOCK_STREAM`, `S`, `sackOK`.
    Word(String),
    /// `"text"`.
    Str(String),
    /// `` `command` ``.
    BackQuoted(String),
    /// `%{ code }%`.
    Code(String),
    /// `--name[=value]`.
    Option(String, Option<String>),
    /// `...`.
    Ellipsis,
    /// A single character: `< > ( ) [ ] { } , : = | + * ~ . -`.
    Punct(char),
}

/// A token and the line it starts on.
#[derive(Debug, Clone, PartialEq)]
pub struct Spanned {
    /// The token.
    pub token: Token,
    /// Its line (from 1).
    pub line: usize,
}

/// The tokens of `text`.
///
/// # Errors
///
/// An unterminated string, comment, command or code block, or a
/// character the language does not use, with its line.
pub fn lex(text: &str) -> Result<Vec<Spanned>, ParseError> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    let mut line = 1;
    let n = chars.len();
    let peek = |i: usize| chars.get(i).copied().unwrap_or('\0');
    while i < n {
        let c = chars[i];
        let start_line = line;
        if c == '\n' {
            line += 1;
            i += 1;
            continue;
        }
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        // Comments.
        if c == '/' && peek(i + 1) == '/' {
            while i < n && chars[i] != '\n' {
                i += 1;
            }
            continue;
        }
        if c == '/' && peek(i + 1) == '*' {
            i += 2;
            loop {
                if i >= n {
                    return Err(ParseError::new(start_line, "unterminated /* comment"));
                }
                if chars[i] == '*' && peek(i + 1) == '/' {
                    i += 2;
                    break;
                }
                if chars[i] == '\n' {
                    line += 1;
                }
                i += 1;
            }
            continue;
        }
        let push = |out: &mut Vec<Spanned>, token: Token| {
            out.push(Spanned {
                token,
                line: start_line,
            })
        };
        // Options: --name[=value].
        if c == '-' && peek(i + 1) == '-' && (peek(i + 2).is_ascii_alphanumeric()) {
            i += 2;
            let s = i;
            while i < n && (chars[i].is_ascii_alphanumeric() || chars[i] == '_' || chars[i] == '-')
            {
                i += 1;
            }
            let name: String = chars[s..i].iter().collect();
            let mut value = None;
            if peek(i) == '=' {
                i += 1;
                let s = i;
                if peek(i) == '"' {
                    i += 1;
                    while i < n && chars[i] != '"' {
                        i += 1;
                    }
                    value = Some(chars[s + 1..i.min(n)].iter().collect());
                    i += 1;
                } else {
                    while i < n && !chars[i].is_whitespace() {
                        i += 1;
                    }
                    value = Some(chars[s..i].iter().collect());
                }
            }
            push(&mut out, Token::Option(name, value));
            continue;
        }
        // Strings.
        if c == '"' {
            i += 1;
            let mut s = String::new();
            loop {
                match chars.get(i) {
                    None | Some('\n') => {
                        return Err(ParseError::new(start_line, "unterminated string"))
                    }
                    Some('"') => {
                        i += 1;
                        break;
                    }
                    Some('\\') => {
                        let e = peek(i + 1);
                        s.push(match e {
                            'n' => '\n',
                            't' => '\t',
                            '0' => '\0',
                            other => other,
                        });
                        i += 2;
                    }
                    Some(&ch) => {
                        s.push(ch);
                        i += 1;
                    }
                }
            }
            push(&mut out, Token::Str(s));
            continue;
        }
        // Backquoted commands.
        if c == '`' {
            i += 1;
            let s = i;
            while i < n && chars[i] != '`' {
                if chars[i] == '\n' {
                    line += 1;
                }
                i += 1;
            }
            if i >= n {
                return Err(ParseError::new(start_line, "unterminated ` command"));
            }
            push(&mut out, Token::BackQuoted(chars[s..i].iter().collect()));
            i += 1;
            continue;
        }
        // Code blocks.
        if c == '%' && peek(i + 1) == '{' {
            i += 2;
            let s = i;
            while i < n && !(chars[i] == '}' && peek(i + 1) == '%') {
                if chars[i] == '\n' {
                    line += 1;
                }
                i += 1;
            }
            if i >= n {
                return Err(ParseError::new(start_line, "unterminated %{ code block"));
            }
            push(&mut out, Token::Code(chars[s..i].iter().collect()));
            i += 2;
            continue;
        }
        if c == '.' && peek(i + 1) == '.' && peek(i + 2) == '.' {
            push(&mut out, Token::Ellipsis);
            i += 3;
            continue;
        }
        // Numbers: 0x1f, 12, 0.5, .5, 192.0.2.1.
        if c.is_ascii_digit() || (c == '.' && peek(i + 1).is_ascii_digit()) {
            if c == '0' && (peek(i + 1) == 'x' || peek(i + 1) == 'X') {
                let s = i + 2;
                i = s;
                while i < n && chars[i].is_ascii_hexdigit() {
                    i += 1;
                }
                let digits: String = chars[s..i].iter().collect();
                let v = i64::from_str_radix(&digits, 16).map_err(|_| {
                    ParseError::new(start_line, format!("bad hex number 0x{digits}"))
                })?;
                push(&mut out, Token::Hex(v));
                continue;
            }
            let s = i;
            let mut dots = 0;
            while i < n {
                if chars[i].is_ascii_digit() {
                    i += 1;
                } else if chars[i] == '.' && peek(i + 1).is_ascii_digit() {
                    dots += 1;
                    i += 1;
                } else {
                    break;
                }
            }
            let text: String = chars[s..i].iter().collect();
            let token = match dots {
                0 => Token::Int(text.parse().map_err(|_| {
                    ParseError::new(start_line, format!("number out of range: {text}"))
                })?),
                1 => Token::Float(text),
                3 => Token::Ipv4(text),
                _ => return Err(ParseError::new(start_line, format!("bad number {text}"))),
            };
            push(&mut out, token);
            continue;
        }
        if c.is_ascii_alphabetic() || c == '_' {
            let s = i;
            while i < n && (chars[i].is_ascii_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            push(&mut out, Token::Word(chars[s..i].iter().collect()));
            continue;
        }
        if "<>()[]{},:=|+*~.-;!/'?&@$^%".contains(c) {
            push(&mut out, Token::Punct(c));
            i += 1;
            continue;
        }
        return Err(ParseError::new(
            start_line,
            format!("unexpected character {c:?}"),
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(s: &str) -> Vec<Token> {
        lex(s).unwrap().into_iter().map(|t| t.token).collect()
    }

    #[test]
    fn times_ellipsis_and_numbers() {
        assert_eq!(
            tokens("+0...0.5 .1 0x1f 192.0.2.1"),
            vec![
                Token::Punct('+'),
                Token::Int(0),
                Token::Ellipsis,
                Token::Float("0.5".into()),
                Token::Float(".1".into()),
                Token::Hex(31),
                Token::Ipv4("192.0.2.1".into()),
            ]
        );
    }

    #[test]
    fn comments_strings_commands_and_lines() {
        let t = lex("// c\n/* a\nb */ x \"s\\\"\" `sysctl a=1`\n--ip_version=ipv4").unwrap();
        assert_eq!(t[0].token, Token::Word("x".into()));
        assert_eq!(t[0].line, 3);
        assert_eq!(t[1].token, Token::Str("s\"".into()));
        assert_eq!(t[2].token, Token::BackQuoted("sysctl a=1".into()));
        assert_eq!(
            t[3].token,
            Token::Option("ip_version".into(), Some("ipv4".into()))
        );
        assert_eq!(t[3].line, 4);
    }

    #[test]
    fn errors_name_their_line() {
        let e = lex("0 socket()\n\"open").unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.message.contains("unterminated string"));
        assert_eq!(lex("\n\n#").unwrap_err().line, 3);
    }
}
