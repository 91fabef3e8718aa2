//! Backquoted shell lines: the runner understands `sysctl` settings
//! (`sysctl -q net.ipv4.tcp_sack=0`, several joined by `;` or `&&`, or
//! `echo 0 > /proc/sys/net/ipv4/tcp_sack`) and hands each to the backend;
//! any other command makes the script unsupported (running it, or
//! skipping it, would silently change what the script expects).

/// The `(key, value)` sysctls of `command`, or the part that is not one.
///
/// # Errors
///
/// The first piece of the command that is not a sysctl setting.
pub fn sysctls(command: &str) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    for piece in command.split(['\n', ';']).flat_map(|p| p.split("&&")) {
        let piece = piece.trim();
        if piece.is_empty() {
            continue;
        }
        let words: Vec<&str> = piece.split_whitespace().collect();
        match words.first().copied() {
            Some("sysctl") => {
                let mut any = false;
                for w in &words[1..] {
                    if w.starts_with('-') {
                        if matches!(*w, "-q" | "-w" | "-qw" | "-wq") {
                            continue;
                        }
                        return Err(format!("`{piece}` (sysctl option {w})"));
                    }
                    let Some((k, v)) = w.split_once('=') else {
                        return Err(format!("`{piece}` (a sysctl read, not a setting)"));
                    };
                    out.push((k.replace('/', "."), v.trim_matches('"').to_string()));
                    any = true;
                }
                if !any {
                    return Err(format!("`{piece}`"));
                }
            }
            Some("echo") => {
                // echo V > /proc/sys/a/b/c
                let Some((lhs, path)) = piece.split_once('>') else {
                    return Err(format!("`{piece}`"));
                };
                let value = lhs
                    .trim()
                    .trim_start_matches("echo")
                    .trim()
                    .trim_matches('"');
                let Some(key) = path.trim().strip_prefix("/proc/sys/") else {
                    return Err(format!("`{piece}`"));
                };
                out.push((key.replace('/', "."), value.to_string()));
            }
            _ => return Err(format!("`{piece}`")),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sysctl_forms() {
        assert_eq!(
            sysctls("sysctl -q net.ipv4.tcp_sack=0; sysctl -w net/ipv4/tcp_timestamps=1").unwrap(),
            vec![
                ("net.ipv4.tcp_sack".into(), "0".into()),
                ("net.ipv4.tcp_timestamps".into(), "1".into())
            ]
        );
        assert_eq!(
            sysctls("echo 3 > /proc/sys/net/ipv4/tcp_syn_retries").unwrap(),
            vec![("net.ipv4.tcp_syn_retries".into(), "3".into())]
        );
    }

    #[test]
    fn anything_else_is_named() {
        assert!(sysctls("../common/defaults.sh")
            .unwrap_err()
            .contains("defaults.sh"));
        assert!(sysctls("sysctl net.ipv4.tcp_sack").is_err());
        assert!(sysctls("tc qdisc add dev tun0 root netem").is_err());
    }
}
