//! The bounds checks every [`PacketBuf`](super::PacketBuf) makes before it
//! moves the edges of its data, with the error each reports.

use super::BufError;

/// `Ok` if `needed` bytes fit in the `available` headroom (for
/// [`prepend`](super::PacketBuf::prepend)).
#[inline(always)]
pub(crate) fn headroom(needed: usize, available: usize) -> Result<(), BufError> {
    if needed > available {
        return Err(BufError::NoHeadroom { needed, available });
    }
    Ok(())
}

/// `Ok` if `needed` bytes fit in the `available` tailroom (for
/// [`append`](super::PacketBuf::append)).
#[inline(always)]
pub(crate) fn tailroom(needed: usize, available: usize) -> Result<(), BufError> {
    if needed > available {
        return Err(BufError::NoTailroom { needed, available });
    }
    Ok(())
}

/// `Ok` if `needed` bytes can be trimmed off `available` bytes of data (for
/// [`trim_front`](super::PacketBuf::trim_front) and
/// [`trim_back`](super::PacketBuf::trim_back)).
#[inline(always)]
pub(crate) fn data(needed: usize, available: usize) -> Result<(), BufError> {
    if needed > available {
        return Err(BufError::TooShort { needed, available });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_check_passes_up_to_the_limit_and_names_its_error_past_it() {
        assert_eq!(headroom(4, 4), Ok(()));
        assert_eq!(
            headroom(5, 4),
            Err(BufError::NoHeadroom {
                needed: 5,
                available: 4
            })
        );
        assert_eq!(tailroom(0, 0), Ok(()));
        assert_eq!(
            tailroom(1, 0),
            Err(BufError::NoTailroom {
                needed: 1,
                available: 0
            })
        );
        assert_eq!(data(3, 7), Ok(()));
        assert_eq!(
            data(8, 7),
            Err(BufError::TooShort {
                needed: 8,
                available: 7
            })
        );
    }
}
