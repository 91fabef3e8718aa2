//! Finding a command's keys among its arguments.

use super::{Command, KeySpec};

/// A command whose arguments do not hold the keys its spec promises.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyError {
    /// The key count argument is not a non-negative number.
    BadCount,
    /// Fewer arguments than the keys need.
    TooFewArguments,
}

/// The positions of `command`'s keys in `args` (`args[0]` is the name), in
/// order. Key-value commands (MSET) give the keys only.
pub fn keys(command: &Command, args: &[&[u8]]) -> Result<Vec<usize>, KeyError> {
    let mut positions = Vec::new();
    for_each_key(command, args, |p| positions.push(p))?;
    Ok(positions)
}

/// Calls `found` with the position of each of `command`'s keys in `args`,
/// in order, once the arguments are known to hold them all (as [`keys`],
/// without a list).
pub fn for_each_key(
    command: &Command,
    args: &[&[u8]],
    found: impl FnMut(usize),
) -> Result<(), KeyError> {
    match command.keys {
        KeySpec::None => Ok(()),
        KeySpec::Range { first, last, step } => {
            let last = if last < 0 {
                args.len() as isize + last
            } else {
                last
            };
            if last < first as isize {
                return if args.len() > first {
                    Ok(())
                } else {
                    Err(KeyError::TooFewArguments)
                };
            }
            let last = last as usize;
            if last >= args.len() {
                return Err(KeyError::TooFewArguments);
            }
            if step > 1 && !(last + 1 - first).is_multiple_of(step) && last + 1 == args.len() {
                // A key without its value (MSET a 1 b).
                return Err(KeyError::TooFewArguments);
            }
            (first..=last).step_by(step.max(1)).for_each(found);
            Ok(())
        }
        KeySpec::Counted { count_at, extra } => {
            let count = args.get(count_at).ok_or(KeyError::TooFewArguments)?;
            let count: usize = std::str::from_utf8(count)
                .ok()
                .and_then(|c| c.parse().ok())
                .ok_or(KeyError::BadCount)?;
            let end = (count_at + 1)
                .checked_add(count)
                .ok_or(KeyError::BadCount)?;
            if end > args.len() {
                return Err(KeyError::TooFewArguments);
            }
            extra.into_iter().chain(count_at + 1..end).for_each(found);
            Ok(())
        }
    }
}
